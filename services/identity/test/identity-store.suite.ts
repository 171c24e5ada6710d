import { openMigratedTestDatabase, type TestEngine } from "@meshwork/testing";
import { migrations } from "../migrations/index.js";
import { createKnexIdentityStore } from "../src/adapters/identity-store.knex.js";
import { identityStoreBehaviour } from "./identity-store.behaviour.js";

/** The knex store on `engine`: PGlite in identity-store.test.ts, PostgreSQL in identity-store.int.test.ts. */
export function knexStoreSuite(engine: TestEngine): void {
  identityStoreBehaviour(`knex on ${engine}`, async (t) => {
    const database = await openMigratedTestDatabase(t, engine, { label: "identity_store", migrations, migrationsTable: "identity_migrations" });
    return database && createKnexIdentityStore(database.knex);
  });
}
