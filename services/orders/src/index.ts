export { startOrders, type OrdersOptions } from "./main.js";
export { ordersConfigSpec } from "./config.js";
export { ORDER_VIEW, rebuildOrderView } from "./adapters/order-view.knex.js";
export { PROJECTIONS, rebuildProjection, UnknownProjectionError } from "./rebuild.js";
export { rebuildSalesView, SALES_PROJECTION } from "./sales-view.js";
