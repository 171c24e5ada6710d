import { createMemoryNotificationStore } from "../src/adapters/notification-store.memory.js";
import { notificationStoreBehaviour } from "./notification-store.behaviour.js";
import { knexNotificationStoreSuite } from "./notification-store.suite.js";

notificationStoreBehaviour("memory", async () => createMemoryNotificationStore());
knexNotificationStoreSuite("PGlite");
