import { openMigratedTestDatabase, type TestEngine } from "@meshwork/testing";
import { migrations } from "../migrations/index.js";
import { createKnexPaymentStore } from "../src/adapters/payment-store.knex.js";
import { paymentStoreBehaviour } from "./payment-store.behaviour.js";

/** The knex store on `engine`: PGlite in payment-store.test.ts, PostgreSQL in payment-store.int.test.ts. */
export function knexStoreSuite(engine: TestEngine): void {
  paymentStoreBehaviour(`knex on ${engine}`, async (t) => {
    const database = await openMigratedTestDatabase(t, engine, { label: "payments_store", migrations, migrationsTable: "payments_migrations" });
    return database && createKnexPaymentStore(database.knex);
  });
}
