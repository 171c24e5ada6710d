export { startIdentity } from "./main.js";
export { identityConfigSpec } from "./config.js";
