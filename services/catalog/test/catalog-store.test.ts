import { createMemoryCatalogStore } from "../src/adapters/catalog-store.memory.js";
import { catalogStoreBehaviour } from "./catalog-store.behaviour.js";
import { knexStoreSuite } from "./catalog-store.suite.js";

catalogStoreBehaviour("memory", async () => createMemoryCatalogStore());
knexStoreSuite("PGlite");
