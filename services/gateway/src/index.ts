export { startGateway, type GatewayOptions } from "./main.js";
export { gatewayConfigSpec } from "./config.js";
export { LIVE_KEYS as GATEWAY_LIVE_KEYS } from "./live-settings.js";
