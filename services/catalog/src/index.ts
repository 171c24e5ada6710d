export { startCatalog, type RunningCatalog } from "./main.js";
export { catalogConfigSpec } from "./config.js";
