export { startOrders, type OrdersOptions } from "./main.js";
export { ordersConfigSpec } from "./config.js";
