/**
 * The event store on a real PostgreSQL, where transactions run concurrently:
 * the out-of-order commit that a sequence checkpoint gets wrong, and two
 * writers racing for one stream version.
 */
import assert from "node:assert/strict";
import { describe, test } from "vitest";
import type { Knex } from "knex";
import { openMigratedTestDatabase, type TestScope } from "@meshwork/testing";
import { createEventStore, eventStoreMigration, StreamConflictError, type RecordedEvent } from "./event-store.js";
import { createProjectionReader } from "./projection-reader.js";

async function postgres(t: TestScope): Promise<Knex | undefined> {
  const database = await openMigratedTestDatabase(t, "PostgreSQL", {
    label: "events",
    migrations: [eventStoreMigration("0001_events")],
    migrationsTable: "events_migrations",
  });
  return database?.knex;
}

const placed = (id: string) => ({ type: "OrderPlaced", schemaVersion: 1, data: { id } });

/**
 * The baseline: a checkpoint on the global position alone. It is what a
 * projection reader looks like at first sight, and it is wrong.
 */
function createNaiveSequenceReader(db: Knex) {
  let checkpoint = 0;
  const delivered: string[] = [];
  return {
    delivered,
    async poll() {
      const rows = (await db("events").where("position", ">", checkpoint).orderBy("position").select("position", "stream_id")) as { position: number; stream_id: string }[];
      for (const row of rows) {
        delivered.push(row.stream_id);
        checkpoint = row.position;
      }
    },
  };
}

/** Returns once a session of this database waits for a lock; polls by queries, a bounded number of times. */
async function untilALockIsAwaited(db: Knex): Promise<void> {
  for (let attempt = 0; attempt < 10_000; attempt++) {
    const { rows } = await db.raw("select count(*) as waiting from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'");
    if (rows[0].waiting > 0) return;
  }
  throw new Error("no session ever waited for a lock");
}

/**
 * Runs `step` (which returns how many events it delivered) until `expected`
 * have been delivered in all, polling every 25 ms for at most 15 s: the
 * delivery horizon waits for every older transaction on the server, other
 * tests' included, which this test can only wait out.
 */
async function catchUpTo(step: () => Promise<number>, expected: number): Promise<number> {
  const deadline = Date.now() + 15_000;
  let total = await step();
  while (total < expected && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    total += await step();
  }
  return total;
}

describe("event store on PostgreSQL", () => {
  test("when A takes the lower position but commits after B, a sequence checkpoint skips A for good and the transaction-id reader delivers it", async (t) => {
    const db = await postgres(t);
    if (!db) return;
    const store = createEventStore();
    const naive = createNaiveSequenceReader(db);
    const delivered: RecordedEvent[] = [];
    const reader = createProjectionReader({ name: "orders", store, handle: async (_trx, events) => void delivered.push(...events) });

    // Two transactions on two pool connections, held open; each step is
    // awaited, so the interleaving is fixed without any timing.
    const a = await db.transaction();
    const b = await db.transaction();
    try {
      const appendedA = await store.append(a, "stream-a", 0, [placed("a")]);
      const appendedB = await store.append(b, "stream-b", 0, [placed("b")]);
      assert.ok(appendedA.positions[0]! < appendedB.positions[0]!, "A holds the lower position");
      await b.commit();

      // Between B's commit and A's: both readers poll.
      await naive.poll();
      assert.deepEqual(naive.delivered, ["stream-b"], "the naive reader sees B and moves its checkpoint past A's position");
      assert.equal(await reader.runOnce(db), 0, "A is still running, so B (a younger transaction) is held back");
      assert.deepEqual(await reader.checkpoint(db), { transactionId: "0", position: 0 });

      await a.commit();
    } finally {
      if (!a.isCompleted()) await a.rollback();
      if (!b.isCompleted()) await b.rollback();
    }

    await naive.poll();
    assert.ok(!naive.delivered.includes("stream-a"), `the naive reader missed A for good: ${naive.delivered.join(", ")}`);
    // Nothing else writes to this database, but the horizon is cluster-wide:
    // a writing transaction of a test running beside this one can hold it back
    // for a while, so the reader polls until both arrive (or the deadline names it).
    assert.equal(await catchUpTo(() => reader.catchUp(db), 2), 2);
    assert.deepEqual(
      delivered.map((event) => event.streamId),
      ["stream-a", "stream-b"],
      "every event, in commit-safe transaction order",
    );
    assert.equal(await reader.runOnce(db), 0, "and not again");
  });

  test("two writers appending at the same expected version: the second waits for the first and gets a StreamConflictError", async (t) => {
    const db = await postgres(t);
    if (!db) return;
    const store = createEventStore();
    await db.transaction((trx) => store.append(trx, "order-1", 0, [placed("1")]));
    const first = await db.transaction();
    const second = await db.transaction();
    try {
      // Both pass the version pre-check: neither sees the other's insert yet.
      await store.append(first, "order-1", 1, [placed("first")]);
      const racing = store.append(second, "order-1", 1, [placed("second")]).then(
        () => undefined,
        (error: unknown) => error,
      );
      // The second's insert must be waiting on the first's index entry before
      // the first commits, or the pre-check would refuse it instead of the constraint.
      await untilALockIsAwaited(db);
      await first.commit();
      const error = await racing;
      assert.ok(error instanceof StreamConflictError, `the unique constraint refused the second: ${String(error)}`);
      assert.equal(error.expectedVersion, 1);
      assert.equal(error.actualVersion, undefined, "raised by the constraint, not by the pre-check");
      await second.rollback();
    } finally {
      if (!first.isCompleted()) await first.rollback();
      if (!second.isCompleted()) await second.rollback();
    }
    const events = await store.readStream(db, "order-1");
    assert.deepEqual(
      events.map((event) => event.data),
      [{ id: "1" }, { id: "first" }],
    );
  });

  test("two readers of one projection at once never deliver an event twice", async (t) => {
    const db = await postgres(t);
    if (!db) return;
    const store = createEventStore();
    for (let index = 0; index < 20; index++) await db.transaction((trx) => store.append(trx, `s-${index}`, 0, [placed(String(index))]));
    const delivered: number[] = [];
    const reader = () => createProjectionReader({ name: "p", store, batchSize: 3, handle: async (_trx, events) => void delivered.push(...events.map((event) => event.position)) });
    const first = reader();
    const second = reader();
    // Both at once, again until all 20 are through (the horizon is cluster-wide: see above).
    const total = await catchUpTo(async () => (await Promise.all([first.catchUp(db), second.catchUp(db)])).reduce((sum, count) => sum + count, 0), 20);
    assert.equal(total, 20);
    assert.equal(new Set(delivered).size, 20);
  });
});
