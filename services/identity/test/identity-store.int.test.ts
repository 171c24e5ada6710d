import { createSilentLogger, openDatabase } from "@meshwork/platform";
import { createTestDatabase } from "@meshwork/testing";
import { migrations } from "../migrations/index.js";
import { createKnexIdentityStore } from "../src/adapters/identity-store.knex.js";
import { identityStoreBehaviour } from "./identity-store.behaviour.js";

identityStoreBehaviour("knex on PostgreSQL", async (t) => {
  const url = await createTestDatabase(t, "identity_store");
  if (url === undefined) return undefined;
  const database = await openDatabase({ url, migrations, migrationsTable: "identity_migrations", log: createSilentLogger() });
  t.onTestFinished(() => database.close());
  await database.migrate();
  return createKnexIdentityStore(database.knex);
});
