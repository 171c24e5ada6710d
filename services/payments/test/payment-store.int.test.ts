import { createSilentLogger, openDatabase } from "@meshwork/platform";
import { createTestDatabase } from "@meshwork/testing";
import { migrations } from "../migrations/index.js";
import { createKnexPaymentStore } from "../src/adapters/payment-store.knex.js";
import { paymentStoreBehaviour } from "./payment-store.behaviour.js";

paymentStoreBehaviour("knex on PostgreSQL", async (t) => {
  const url = await createTestDatabase(t, "payments_store");
  if (url === undefined) return undefined;
  const database = await openDatabase({ url, migrations, migrationsTable: "payments_migrations", log: createSilentLogger() });
  t.onTestFinished(() => database.close());
  await database.migrate();
  return createKnexPaymentStore(database.knex);
});
