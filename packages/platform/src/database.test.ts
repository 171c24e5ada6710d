import { databaseSuite } from "./database.suite.js";

databaseSuite("PGlite (embedded)");
