import { migrations } from "../migrations/index.js";
import { createKnexPaymentStore } from "../src/adapters/payment-store.knex.js";
import { createMemoryPaymentStore } from "../src/adapters/payment-store.memory.js";
import { paymentStoreBehaviour } from "./payment-store.behaviour.js";
import { openEmbeddedTestDatabase } from "@meshwork/testing";

paymentStoreBehaviour("memory", async () => createMemoryPaymentStore());

paymentStoreBehaviour("knex on PGlite", async (t) => {
  const database = await openEmbeddedTestDatabase({ migrations, migrationsTable: "payments_migrations" });
  t.onTestFinished(() => database.close());
  await database.migrate();
  return createKnexPaymentStore(database.knex);
});
