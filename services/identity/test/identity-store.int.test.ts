import { knexStoreSuite } from "./identity-store.suite.js";

knexStoreSuite("PostgreSQL");
