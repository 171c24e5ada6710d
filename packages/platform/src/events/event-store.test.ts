/** The event store and projection reader on the embedded PGlite of `npm start`, and upcasting. */
import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { openMigratedTestDatabase, type TestScope } from "@meshwork/testing";
import { enqueueOutbox, outboxMigration } from "../outbox/outbox.js";
import { runSql, sqlStatement } from "../sql.js";
import { createEventStore, createUpcast, eventStoreMigration, StreamConflictError, type NewEvent, type RecordedEvent } from "./event-store.js";
import { createProjectionReader } from "./projection-reader.js";

async function pglite(t: TestScope) {
  const database = await openMigratedTestDatabase(t, "PGlite", {
    label: "events",
    migrations: [eventStoreMigration("0001_events"), outboxMigration("0002_outbox")],
    migrationsTable: "events_migrations",
  });
  return database!.knex;
}

const placed = (sku: string) => ({ type: "OrderPlaced", schemaVersion: 2, data: { sku, quantity: 1 } });

describe("event store on PGlite", () => {
  test("appended events read back in version order, with the outbox row committed in the same transaction", async (t) => {
    const db = await pglite(t);
    const store = createEventStore();
    const result = await db.transaction(async (trx) => {
      const appended = await store.append(trx, "order-1", 0, [placed("a"), { type: "OrderConfirmed", schemaVersion: 1, data: {}, metadata: { by: "saga" } }]);
      await enqueueOutbox(trx, [{ aggregateId: "order-1", exchange: "x", routingKey: "r", type: "OrderConfirmed", contentType: "application/json", body: Buffer.from("{}") }]);
      return appended;
    });
    assert.equal(result.nextExpectedVersion, 2);
    const events = await store.readStream(db, "order-1");
    assert.deepEqual(
      events.map((event) => [event.version, event.type, event.schemaVersion, event.data, event.metadata]),
      [
        [1, "OrderPlaced", 2, { sku: "a", quantity: 1 }, {}],
        [2, "OrderConfirmed", 1, {}, { by: "saga" }],
      ],
    );
    assert.deepEqual(
      events.map((event) => event.position),
      result.positions,
    );
    assert.equal((await db("outbox").count({ n: "*" }))[0]!.n, 1);
    assert.deepEqual(await store.readStream(db, "order-2"), []);
  });

  test("a rolled-back transaction leaves neither events nor outbox row", async (t) => {
    const db = await pglite(t);
    const store = createEventStore();
    await assert.rejects(
      db.transaction(async (trx) => {
        await store.append(trx, "order-1", 0, [placed("a")]);
        await enqueueOutbox(trx, [{ aggregateId: "order-1", exchange: "x", routingKey: "r", type: "T", contentType: "application/json", body: Buffer.from("{}") }]);
        throw new Error("saga step failed");
      }),
      /saga step failed/,
    );
    assert.deepEqual(await store.readStream(db, "order-1"), []);
    assert.equal((await db("outbox").count({ n: "*" }))[0]!.n, 0);
  });

  test("an append at a stale or future expected version is a StreamConflictError naming the actual version", async (t) => {
    const db = await pglite(t);
    const store = createEventStore();
    await db.transaction((trx) => store.append(trx, "order-1", 0, [placed("a")]));
    for (const expected of [0, 2]) {
      const error = await db.transaction((trx) => store.append(trx, "order-1", expected, [placed("b")])).catch((caught: unknown) => caught);
      assert.ok(error instanceof StreamConflictError, String(error));
      assert.equal(error.actualVersion, 1);
      assert.equal(error.expectedVersion, expected);
    }
    assert.equal((await store.readStream(db, "order-1")).length, 1);
  });

  test("appendSql: one statement of fixed text appends at the expected version, writes nothing past its guard, and a race past the guard is a StreamConflictError", async (t) => {
    const db = await pglite(t);
    const store = createEventStore();
    const sql = store.appendSql({ streamId: "$1", expectedVersion: "$2", events: "$3" });
    // The append as a data-modifying CTE beside another write that depends on the same guard.
    const appendWithMarker = async (expected: number, guarded: boolean, events: NewEvent[] = [placed("a")]) => {
      const append = store.appendStatement("order-1", expected, events);
      const statement = sqlStatement(
        `test_append_${guarded}`,
        `with appended as (${sql.insert(guarded ? sql.atExpectedVersion : "true")}),
              marked as (insert into outbox (message_id, partition, aggregate_id, exchange, routing_key, message_type, content_type, body)
                         select gen_random_uuid(), 0, 'order-1', 'x', 'r', 'T', 'application/json', '\\x00'::bytea where exists (select 1 from appended))
         select (select json_agg(json_build_object('position', position, 'version', version, 'recorded_at', recorded_at)) from appended) as appended`,
      );
      const { rows } = await runSql<{ appended: { position: number; version: number; recorded_at: string }[] | null }>(db, statement, [
        append.values.streamId,
        append.values.expectedVersion,
        append.values.events,
      ]);
      return { append, appended: rows[0]!.appended };
    };
    const first = await appendWithMarker(0, true);
    assert.deepEqual(
      first.append.recorded(first.appended!).map((event) => [event.version, event.type]),
      [[1, "OrderPlaced"]],
    );
    // Any number of events through the same text, numbered after the expected version.
    const two = await appendWithMarker(1, true, [placed("b"), { type: "OrderConfirmed", schemaVersion: 1, data: {}, metadata: { by: "saga" } }]);
    assert.deepEqual(
      two.append.recorded(two.appended!).map((event) => [event.version, event.type]),
      [
        [2, "OrderPlaced"],
        [3, "OrderConfirmed"],
      ],
    );
    // A stale expected version: the guard is false, nothing is written.
    assert.equal((await appendWithMarker(0, true)).appended, null);
    // A writer that raced past its guard meets the constraint, and the whole statement fails.
    const stale = store.appendStatement("order-1", 0, [placed("b")]);
    const error = await appendWithMarker(0, false).catch((caught: unknown) => stale.conflict(caught));
    assert.ok(error instanceof StreamConflictError, String(error));
    assert.equal(error.expectedVersion, 0);
    assert.deepEqual(
      (await store.readStream(db, "order-1")).map((event) => [event.version, event.type, event.data, event.metadata]),
      [
        [1, "OrderPlaced", { sku: "a", quantity: 1 }, {}],
        [2, "OrderPlaced", { sku: "b", quantity: 1 }, {}],
        [3, "OrderConfirmed", {}, { by: "saga" }],
      ],
    );
    assert.equal((await db("outbox").count({ n: "*" }))[0]!.n, 2);
  });

  test("the unique (stream_id, version) constraint itself refuses a second event at a taken version", async (t) => {
    // The constraint, not the pre-check, is what stops two racing writers; a
    // direct insert shows it holds on PGlite (the race itself is in the int test).
    const db = await pglite(t);
    const store = createEventStore();
    await db.transaction((trx) => store.append(trx, "order-1", 0, [placed("a")]));
    await assert.rejects(db("events").insert({ stream_id: "order-1", version: 1, type: "X", schema_version: 1, data: "{}" }), /events_stream_version/);
  });

  test("catching up ends at the first batch that is not full, without reading again for what committed meanwhile", async (t) => {
    const db = await pglite(t);
    const store = createEventStore();
    const batches: number[] = [];
    const reader = createProjectionReader({ name: "counted", store, batchSize: 2, handle: async (_trx, events) => void batches.push(events.length) });
    for (const id of ["a", "b", "c"]) await db.transaction((trx) => store.append(trx, id, 0, [placed(id)]));
    let reads = 0;
    const countReads = (query: { sql: string }): void => {
      if (query.sql.includes("pg_snapshot_xmin")) reads++;
    };
    db.on("query", countReads);
    t.onTestFinished(() => void db.off("query", countReads));
    assert.equal(await reader.catchUp(db), 3);
    assert.deepEqual(batches, [2, 1]);
    assert.equal(reads, 2, "a full batch, then one of one event, and no third read");
  });

  test("the projection reader delivers every committed event once, in commit order, and keeps its checkpoint with its writes", async (t) => {
    const db = await pglite(t);
    const store = createEventStore();
    await db.schema.createTable("seen", (table) => {
      table.text("stream_id");
      table.integer("version");
    });
    const reader = createProjectionReader({
      name: "seen",
      store,
      batchSize: 2,
      handle: async (trx, events) => {
        await trx("seen").insert(events.map((event) => ({ stream_id: event.streamId, version: event.version })));
      },
    });
    for (const id of ["a", "b", "c"]) await db.transaction((trx) => store.append(trx, id, 0, [placed(id), placed(id)]));
    assert.equal(await reader.catchUp(db), 6);
    assert.equal(await reader.runOnce(db), 0);
    await db.transaction((trx) => store.append(trx, "a", 2, [placed("a")]));
    assert.equal(await reader.catchUp(db), 1);
    const seen = await db("seen").select("stream_id", "version");
    assert.equal(seen.length, 7);
    assert.deepEqual(seen.at(-1), { stream_id: "a", version: 3 });
    const checkpoint = await reader.checkpoint(db);
    assert.equal(checkpoint.position, Math.max(...(await db("events").pluck("position"))));
    assert.match(checkpoint.transactionId, /^\d+$/);
  });

  test("a failing projection handler leaves its checkpoint where it was", async (t) => {
    const db = await pglite(t);
    const store = createEventStore();
    await db.transaction((trx) => store.append(trx, "a", 0, [placed("a")]));
    const failing = createProjectionReader({
      name: "p",
      store,
      handle: async () => {
        throw new Error("read model down");
      },
    });
    await assert.rejects(failing.runOnce(db), /read model down/);
    assert.deepEqual(await failing.checkpoint(db), { transactionId: "0", position: 0 });
    const delivered: RecordedEvent[] = [];
    const working = createProjectionReader({ name: "p", store, handle: async (_trx, events) => void delivered.push(...events) });
    assert.equal(await working.catchUp(db), 1);
    assert.equal(delivered[0]?.streamId, "a");
  });
});

describe("upcasting", () => {
  const upcasters = [
    // v1 had a single "item" string; v2 splits it into sku and quantity.
    { type: "OrderPlaced", fromSchemaVersion: 1, toSchemaVersion: 2, upcast: (data: unknown) => ({ sku: (data as { item: string }).item, quantity: 1 }) },
    // v3 adds a currency, which every order before it was in.
    { type: "OrderPlaced", fromSchemaVersion: 2, toSchemaVersion: 3, upcast: (data: unknown) => ({ ...(data as object), currency: "EUR" }) },
  ];

  test("an old event is read in the current shape, through every step, and the stored row is not rewritten", async (t) => {
    const db = await pglite(t);
    const store = createEventStore({ upcasters });
    await db.transaction((trx) =>
      store.append(trx, "order-1", 0, [
        { type: "OrderPlaced", schemaVersion: 1, data: { item: "sku-1" } },
        { type: "OrderPlaced", schemaVersion: 3, data: { sku: "sku-2", quantity: 2, currency: "USD" } },
        { type: "OrderConfirmed", schemaVersion: 1, data: { item: "unchanged: other type" } },
      ]),
    );
    const events = await store.readStream(db, "order-1");
    assert.deepEqual(
      events.map((event) => [event.schemaVersion, event.data]),
      [
        [3, { sku: "sku-1", quantity: 1, currency: "EUR" }],
        [3, { sku: "sku-2", quantity: 2, currency: "USD" }],
        [1, { item: "unchanged: other type" }],
      ],
    );
    assert.deepEqual((await db("events").where({ version: 1 }).first()).data, { item: "sku-1" });
    const delivered: RecordedEvent[] = [];
    await createProjectionReader({ name: "p", store, handle: async (_trx, batch) => void delivered.push(...batch) }).catchUp(db);
    assert.deepEqual(delivered[0]?.data, { sku: "sku-1", quantity: 1, currency: "EUR" }, "projections see the current shape too");
  });

  test("an upcaster that does not raise the version, or two for one step, is refused at construction", () => {
    assert.throws(() => createUpcast([{ type: "T", fromSchemaVersion: 2, toSchemaVersion: 2, upcast: (data) => data }]), /must raise/);
    assert.throws(() => createUpcast([upcasters[0]!, upcasters[0]!]), /two upcasters/);
  });
});
