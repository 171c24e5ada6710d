export { startNotifications, ORDER_EVENT_BINDINGS, type NotificationsOptions } from "./main.js";
export { notificationsConfigSpec } from "./config.js";
export { createStatsBoard, type NotificationStats, type StatsBoard } from "./stats.js";
