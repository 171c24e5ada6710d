import { openDatabase, createSilentLogger } from "@meshwork/platform";
import { createTestDatabase } from "@meshwork/testing";
import { migrations } from "../migrations/index.js";
import { createKnexCatalogStore } from "../src/adapters/catalog-store.knex.js";
import { catalogStoreBehaviour } from "./catalog-store.behaviour.js";

catalogStoreBehaviour("knex on PostgreSQL", async (t) => {
  const url = await createTestDatabase(t, "catalog_store");
  if (url === undefined) return undefined;
  const database = await openDatabase({ url, migrations, migrationsTable: "catalog_migrations", log: createSilentLogger() });
  t.onTestFinished(() => database.close());
  await database.migrate();
  return createKnexCatalogStore(database.knex);
});
