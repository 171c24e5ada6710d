import assert from "node:assert/strict";
import { describe, test } from "vitest";
import type { Knex } from "@meshwork/platform";
import { openMigratedTestDatabase, type TestEngine, type TestScope } from "@meshwork/testing";
import { migrations } from "../migrations/index.js";
import { createKnexNotificationStore } from "../src/adapters/notification-store.knex.js";
import { notificationStoreBehaviour } from "./notification-store.behaviour.js";

async function notificationsDatabase(t: TestScope, engine: TestEngine): Promise<Knex | undefined> {
  return (await openMigratedTestDatabase(t, engine, { label: "notifications", migrations, migrationsTable: "notifications_migrations", poolMax: 12 }))?.knex;
}

/** The knex store on `engine`: run on PGlite by notification-store.test.ts, on PostgreSQL by notification-store.int.test.ts. */
export function knexNotificationStoreSuite(engine: TestEngine): void {
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
