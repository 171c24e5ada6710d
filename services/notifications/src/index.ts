export { startNotifications, ORDER_EVENT_BINDINGS, type NotificationsOptions, type RunningNotifications } from "./main.js";
export { notificationsConfigSpec } from "./config.js";
export type { NotificationStats } from "./stats.js";
