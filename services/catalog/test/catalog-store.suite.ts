import { openMigratedTestDatabase, type TestEngine } from "@meshwork/testing";
import { migrations } from "../migrations/index.js";
import { createKnexCatalogStore } from "../src/adapters/catalog-store.knex.js";
import { catalogStoreBehaviour } from "./catalog-store.behaviour.js";

/** The knex store on `engine`: PGlite in catalog-store.test.ts, PostgreSQL in catalog-store.int.test.ts. */
export function knexStoreSuite(engine: TestEngine): void {
  catalogStoreBehaviour(`knex on ${engine}`, async (t) => {
    const database = await openMigratedTestDatabase(t, engine, { label: "catalog_store", migrations, migrationsTable: "catalog_migrations" });
    return database && createKnexCatalogStore(database.knex);
  });
}
