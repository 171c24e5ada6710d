export { startCatalog } from "./main.js";
export { catalogConfigSpec } from "./config.js";
