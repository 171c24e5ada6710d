import { knexNotificationStoreSuite } from "./notification-store.suite.js";

knexNotificationStoreSuite("PostgreSQL");
