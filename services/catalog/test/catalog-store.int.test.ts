import { knexStoreSuite } from "./catalog-store.suite.js";

knexStoreSuite("PostgreSQL");
