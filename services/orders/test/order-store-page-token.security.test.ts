import { orderStorePageTokenSuite } from "./order-store.suite.js";

orderStorePageTokenSuite("PGlite");
