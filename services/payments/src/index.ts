export { startPayments } from "./main.js";
export { paymentsConfigSpec } from "./config.js";
export { LIVE_KEYS } from "./live-settings.js";
export { TEST_CARD_TOKENS } from "./adapters/payment-processor.simulated.js";
