import { migrations } from "../migrations/index.js";
import { createKnexCatalogStore } from "../src/adapters/catalog-store.knex.js";
import { createMemoryCatalogStore } from "../src/adapters/catalog-store.memory.js";
import { catalogStoreBehaviour } from "./catalog-store.behaviour.js";
import { openEmbeddedTestDatabase } from "@meshwork/testing";

catalogStoreBehaviour("memory", async () => createMemoryCatalogStore());

catalogStoreBehaviour("knex on PGlite", async (t) => {
  const database = await openEmbeddedTestDatabase({ migrations, migrationsTable: "catalog_migrations" });
  t.onTestFinished(() => database.close());
  await database.migrate();
  return createKnexCatalogStore(database.knex);
});
