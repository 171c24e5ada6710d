export * from "./token-verifier.js";
export * from "./token-verifier-settings.js";
