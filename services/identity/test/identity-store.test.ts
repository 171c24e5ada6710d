import { afterAll } from "vitest";
import { createSilentLogger, openDatabase, type Database } from "@meshwork/platform";
import { migrations } from "../migrations/index.js";
import { createKnexIdentityStore } from "../src/adapters/identity-store.knex.js";
import { createMemoryIdentityStore } from "../src/adapters/identity-store.memory.js";
import { identityStoreBehaviour } from "./identity-store.behaviour.js";

identityStoreBehaviour("memory", async () => createMemoryIdentityStore());

// One PGlite for the whole suite, emptied before each test: starting PGlite
// takes seconds on a busy machine, emptying two tables takes milliseconds.
let pglite: Promise<Database> | undefined;
afterAll(async () => (await pglite)?.close());

identityStoreBehaviour("knex on PGlite", async () => {
  pglite ??= openDatabase({ dataDir: "memory://", migrations, migrationsTable: "identity_migrations", log: createSilentLogger() }).then(async (database) => {
    await database.migrate();
    return database;
  });
  const database = await pglite;
  await database.knex.raw("truncate users, signing_keys");
  return createKnexIdentityStore(database.knex);
});
