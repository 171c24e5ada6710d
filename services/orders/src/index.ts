export { startOrders, type OrdersOptions } from "./main.js";
export { ordersConfigSpec } from "./config.js";
export { ORDER_VIEW, rebuildOrderView, type RebuildOptions, type RebuildReport } from "./adapters/order-view.knex.js";
