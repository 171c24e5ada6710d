import assert from "node:assert/strict";
import { describe, test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import { createSilentLogger, openDatabase, type Knex } from "@meshwork/platform";
import { createTestDatabase, openEmbeddedTestDatabase } from "@meshwork/testing";
import { migrations } from "../migrations/index.js";
import { createKnexNotificationStore } from "../src/adapters/notification-store.knex.js";
import { notificationStoreBehaviour } from "./notification-store.behaviour.js";

export type Engine = "PGlite" | "PostgreSQL";

async function notificationsDatabase(t: TestScope, engine: Engine): Promise<Knex | undefined> {
  let url: string | undefined;
  if (engine === "PostgreSQL") {
    url = await createTestDatabase(t, "notifications");
    if (!url) return undefined;
  }
  const options = { migrations, migrationsTable: "notifications_migrations", poolMax: 12 };
  const database = url ? await openDatabase({ ...options, url, log: createSilentLogger() }) : await openEmbeddedTestDatabase(options);
  t.onTestFinished(() => database.close());
  await database.migrate();
  return database.knex;
}

/** The knex store on `engine`: run on PGlite by notification-store.test.ts, on PostgreSQL by notification-store.int.test.ts. */
export function knexNotificationStoreSuite(engine: Engine): void {
  notificationStoreBehaviour(`knex on ${engine}`, async (t) => {
    const db = await notificationsDatabase(t, engine);
    return db && createKnexNotificationStore(db);
  });

  describe(`knex notification store on ${engine}`, () => {
    test("when writing a notification fails, the inbox entry is rolled back too, so the retry records it", async (t) => {
      const db = await notificationsDatabase(t, engine);
      if (!db) return;
      const store = createKnexNotificationStore(db);
      // PostgreSQL text cannot hold NUL: the second insert of the transaction fails.
      await assert.rejects(store.record("m-1", [{ userId: "ada", orderId: "o-1", subject: "bad\u0000subject", body: "" }]));
      assert.deepEqual(await db("inbox").pluck("message_id"), []);
      const retried = await store.record("m-1", [{ userId: "ada", orderId: "o-1", subject: "Order confirmed", body: "" }]);
      assert.equal(retried.duplicate, false);
      assert.equal(retried.notifications.length, 1);
    });

    test("the schema migrates down and up again", async (t) => {
      const db = await notificationsDatabase(t, engine);
      if (!db) return;
      for (const migration of [...migrations].reverse()) await migration.down(db);
      for (const migration of migrations) await migration.up(db);
      assert.deepEqual(await db("notifications").select("seq"), []);
    });
  });
}
