import assert from "node:assert/strict";
import { test } from "vitest";
import { createTestDatabase } from "@meshwork/testing";
import { openDatabase } from "./database.js";
import { databaseSuite, migrations } from "./database.suite.js";
import { createSilentLogger } from "./logger.js";

databaseSuite("PostgreSQL (pg)");

test("two instances migrating one empty PostgreSQL database at once both start", async (t) => {
  const url = await createTestDatabase(t, "platform_race");
  if (url === undefined) return;
  const open = () => openDatabase({ url, migrations, migrationsTable: "race_migrations", log: createSilentLogger() });
  const [first, second] = await Promise.all([open(), open()]);
  t.onTestFinished(async () => {
    await Promise.all([first.close(), second.close()]);
  });
  const applied = await Promise.all([first.migrate(), second.migrate()]);
  assert.deepEqual(applied.flat(), ["0001_things"], "applied once, by one of them");
});
