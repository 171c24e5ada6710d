/** The background loop and the projection lock on the embedded PGlite of `npm start`. */
import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { openMigratedTestDatabase, type TestScope } from "@meshwork/testing";
import { createSilentLogger } from "../logger.js";
import { createEventStore, eventStoreMigration } from "./event-store.js";
import { ProjectionLockedError, withProjectionLock } from "./projection-lock.js";
import { createProjectionLoop } from "./projection-loop.js";
import { createProjectionReader } from "./projection-reader.js";

async function pglite(t: TestScope) {
  const database = await openMigratedTestDatabase(t, "PGlite", { label: "events", migrations: [eventStoreMigration("0001_events")], migrationsTable: "events_migrations" });
  return database!.knex;
}

describe("projection loop and lock on PGlite", () => {
  test("the loop delivers events appended while it runs, and stop() waits for the batch in hand and then ends the loop", async (t) => {
    const db = await pglite(t);
    const store = createEventStore();
    const delivered: string[] = [];
    let arrived: (() => void) | undefined;
    const reader = createProjectionReader({
      name: "p",
      store,
      handle: async (_trx, events) => {
        delivered.push(...events.map((event) => event.streamId));
        if (delivered.length >= 2) arrived?.();
      },
    });
    const loop = createProjectionLoop({ db, reader, pollMs: 10, log: createSilentLogger() });
    const both = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    loop.start();
    await db.transaction((trx) => store.append(trx, "s-1", 0, [{ type: "A", schemaVersion: 1, data: {} }]));
    await db.transaction((trx) => store.append(trx, "s-2", 0, [{ type: "A", schemaVersion: 1, data: {} }]));
    await both;
    await loop.stop();
    await db.transaction((trx) => store.append(trx, "s-3", 0, [{ type: "A", schemaVersion: 1, data: {} }]));
    assert.deepEqual(delivered, ["s-1", "s-2"], "nothing after stop()");
    assert.equal(await reader.catchUp(db), 1, "and the checkpoint is where the loop left it");
  });

  test("a second holder of a projection's lock is refused at once, naming the projection; the lock is free again afterwards", async (t) => {
    const db = await pglite(t);
    let release: (() => void) | undefined;
    const holding = withProjectionLock(db, "sales", () => new Promise<void>((resolve) => (release = resolve)));
    await assert.rejects(
      withProjectionLock(db, "sales", async () => "never"),
      (error: unknown) => error instanceof ProjectionLockedError && error.projection === "sales",
    );
    assert.equal(await withProjectionLock(db, "orders", async () => "another projection"), "another projection");
    release?.();
    await holding;
    assert.equal(await withProjectionLock(db, "sales", async () => "again"), "again");
  });
});
