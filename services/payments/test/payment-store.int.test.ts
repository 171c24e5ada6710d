import { knexStoreSuite } from "./payment-store.suite.js";

knexStoreSuite("PostgreSQL");
