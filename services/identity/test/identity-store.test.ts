import { migrations } from "../migrations/index.js";
import { createKnexIdentityStore } from "../src/adapters/identity-store.knex.js";
import { createMemoryIdentityStore } from "../src/adapters/identity-store.memory.js";
import { identityStoreBehaviour } from "./identity-store.behaviour.js";
import { openEmbeddedTestDatabase } from "@meshwork/testing";

identityStoreBehaviour("memory", async () => createMemoryIdentityStore());

identityStoreBehaviour("knex on PGlite", async (t) => {
  const database = await openEmbeddedTestDatabase({ migrations, migrationsTable: "identity_migrations" });
  t.onTestFinished(() => database.close());
  await database.migrate();
  return createKnexIdentityStore(database.knex);
});
