export { startIdentity } from "./main.js";
export { identityConfigSpec } from "./config.js";
export { rotateIdentityKey, RotationRefusedError } from "./rotate-key.js";
