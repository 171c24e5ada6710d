import { orderStoreSuite } from "./order-store.suite.js";

orderStoreSuite("PostgreSQL");
