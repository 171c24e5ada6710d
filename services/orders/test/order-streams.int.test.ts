/**
 * The order as an event stream, on real PostgreSQL: the saga's writes are
 * appends at an expected version, the order is the fold of its stream, the
 * view (orders + order_history) is that fold, a stale append is refused
 * whole, the view can be checked and rebuilt from the streams (resumably),
 * and migration 0006 turned orders of the old schema into streams without
 * losing anything.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, test } from "vitest";
import { createSilentLogger, openDatabase, StreamConflictError, type Knex } from "@meshwork/platform";
import { createTestDatabase } from "@meshwork/testing";
import { migrations } from "../migrations/index.js";
import { rebuildOrderView } from "../src/adapters/order-view.knex.js";
import { orderStreamId } from "../src/order-events.js";
import type { OrderRecord } from "../src/orders.js";
import type { KnexOrderStore } from "../src/adapters/order-store.knex.js";
import { decide, type StepResult } from "../src/saga.js";
import { eventFactory, newOrder, orderStore, ordersDatabase, outboxRoutingKeys } from "./support.js";

const POLICY = { maxAttempts: 2, backoffBaseMs: 0, backoffMaxMs: 0 };
const priced = (order: OrderRecord): StepResult => ({
  kind: "reserved",
  lines: order.lines.map((line) => ({ productId: line.productId, quantity: line.quantity, unitPriceMinor: 450, currency: "EUR" })),
});

/** Drives one order's saga to its end with scripted step results, through the store as the runner does. */
async function runSaga(store: KnexOrderStore, orderId: string, results: ((order: OrderRecord) => StepResult)[]): Promise<OrderRecord> {
  let [saga] = await store.claim("test", 1, 60_000, orderId);
  for (const next of results) {
    assert.ok(saga, `saga of ${orderId} not claimable`);
    const order = (await store.load(orderId))!;
    const applied = await store.apply(
      saga,
      order,
      decide(saga, next(order), POLICY, () => 0),
      60_000,
      eventFactory,
    );
    assert.ok(applied, "lease lost");
    // The lease is kept while the next step runs at once, freed after a back-off or the end.
    saga = applied.saga.leaseOwner === "test" && applied.saga.step !== "done" ? applied.saga : (await store.claim("test", 1, 60_000, orderId))[0];
  }
  return (await store.load(orderId))!;
}

const withoutToken = (order: OrderRecord): OrderRecord => ({ ...order, cardToken: "" });

describe("orders as event streams (PostgreSQL)", () => {
  test("every ending is a fold of the stream that the view equals; the outbox announces what the stream says", async (t) => {
    const db = (await ordersDatabase(t, "PostgreSQL")) as Knex;
    const store = orderStore(db);
    const place = async () => (await store.place(newOrder("fold"), eventFactory)).order.id;
    const confirmed = await runSaga(store, await place(), [priced, () => ({ kind: "authorized" })]);
    const declined = await runSaga(store, await place(), [priced, () => ({ kind: "declined", reason: "card declined" }), () => ({ kind: "compensated", stockReleased: true, paymentVoided: true })]);
    const refused = await runSaga(store, await place(), [() => ({ kind: "stock_refused", reason: "out of stock" }), () => ({ kind: "compensated", stockReleased: true, paymentVoided: false })]);
    const failed = await runSaga(store, await place(), [
      () => ({ kind: "transient", reason: "down" }),
      () => ({ kind: "transient", reason: "down" }),
      () => ({ kind: "compensated", stockReleased: false, paymentVoided: false }),
    ]);

    assert.deepEqual(
      [confirmed, declined, refused, failed].map((order) => [order.status, order.reason, order.version]),
      [
        ["confirmed", "", 4],
        ["rejected", "card declined", 6],
        ["rejected", "out of stock", 4],
        ["failed", "the catalog stayed unavailable; nothing was charged", 2],
      ],
    );
    assert.deepEqual(
      declined.history.map((entry) => entry.step),
      ["order_placed", "stock_reserved", "payment_declined", "payment_voided", "stock_released", "order_rejected"],
    );
    assert.equal(confirmed.totalMinor, 450);
    for (const order of [confirmed, declined, refused, failed]) {
      assert.deepEqual(withoutToken((await store.get(order.id))!), withoutToken(order), `view of ${order.status} order`);
      const types = (await db("events").where("stream_id", orderStreamId(order.id)).orderBy("version").pluck("type")) as string[];
      assert.equal(types.length, order.version);
      assert.equal((await outboxRoutingKeys(db, order.id)).at(-1), `order.${order.status}`);
    }
    const report = await rebuildOrderView(db, { check: true });
    assert.deepEqual({ handled: report.handled, differences: report.differences }, { handled: 4, differences: 0 });
  });

  test("an append at a stale version is refused whole: no event, no view change, no outbox row, saga untouched", async (t) => {
    const db = (await ordersDatabase(t, "PostgreSQL")) as Knex;
    const store = orderStore(db);
    const { order } = await store.place(newOrder("stale"), eventFactory);
    const [saga] = await store.claim("test", 1, 60_000, order.id);
    const loaded = (await store.load(order.id))!;
    // Someone else appended to the stream after the saga read it.
    await db.transaction((trx) => trx("events").insert({ stream_id: orderStreamId(order.id), version: 2, type: "StockRefused", schema_version: 2, data: JSON.stringify({ reason: "other writer" }) }));
    const before = { saga: await db("sagas").where("order_id", order.id).first("step", "attempts"), outbox: await outboxRoutingKeys(db, order.id) };
    await assert.rejects(
      store.apply(
        saga!,
        loaded,
        decide(saga!, priced(loaded), POLICY, () => 0),
        60_000,
        eventFactory,
      ),
      (error: unknown) => {
        assert.ok(error instanceof StreamConflictError);
        assert.equal(error.expectedVersion, 1);
        return true;
      },
    );
    assert.deepEqual(await db("sagas").where("order_id", order.id).first("step", "attempts"), before.saga);
    assert.deepEqual(await outboxRoutingKeys(db, order.id), before.outbox);
    assert.equal((await store.get(order.id))!.version, 1);
    // Reading again gives the saga the stream as it now is.
    assert.equal((await store.load(order.id))!.version, 2);
  });

  test("a view written wrong is found by the check and rebuilt from the streams, microseconds included; the rebuild resumes after an interruption", async (t) => {
    const db = (await ordersDatabase(t, "PostgreSQL")) as Knex;
    const store = orderStore(db);
    const ids: string[] = [];
    for (let index = 0; index < 5; index++) {
      const { order } = await store.place(newOrder("rebuild"), eventFactory);
      ids.push((await runSaga(store, order.id, [priced, () => ({ kind: "authorized" })])).id);
    }
    const exact = async (id: string) => db("orders").where("id", id).first(db.raw("created_at::text as c"), db.raw("updated_at::text as u"), "status", "version");
    const truth = await Promise.all(ids.map(exact));
    // A bug (or a hand) writes the view wrong in three ways.
    await db("orders").where("id", ids[0]).update({ status: "failed", reason: "oops" });
    await db("orders")
      .where("id", ids[2])
      .update({ created_at: db.raw("created_at + interval '1 microsecond'") });
    await db("order_history").where({ order_id: ids[4], step: "payment_authorized" }).delete();

    const checked = await rebuildOrderView(db, { check: true });
    assert.deepEqual({ handled: checked.handled, differences: checked.differences, swapped: checked.swapped }, { handled: 5, differences: 3, swapped: false });
    assert.equal((await exact(ids[0]!)).status, "failed", "a check writes nothing");

    // Interrupted after one batch of two orders; the next run goes on from there.
    const first = await rebuildOrderView(db, { batchSize: 2, maxBatches: 1 });
    assert.deepEqual({ handled: first.handled, resumed: first.resumed, differences: first.differences }, { handled: 2, resumed: false, differences: 1 });
    const second = await rebuildOrderView(db, { batchSize: 2 });
    assert.deepEqual({ handled: second.handled, resumed: second.resumed, differences: second.differences, swapped: second.swapped }, { handled: 3, resumed: true, differences: 2, swapped: true });

    assert.deepEqual(await Promise.all(ids.map(exact)), truth);
    assert.equal((await rebuildOrderView(db, { check: true })).differences, 0);
    assert.equal(await db("projection_checkpoints").where("name", "orders:rebuild").first(), undefined, "a finished rebuild leaves no checkpoint");
  });

  test("migration 0006 turns orders of the old schema into streams: each folds to the old row and timeline, and a pending saga goes on", async (t) => {
    const url = await createTestDatabase(t, "orders-before-streams");
    if (!url) return;
    const before = await openDatabase({ url, migrations: migrations.slice(0, 5), migrationsTable: "orders_migrations", log: createSilentLogger() });
    await before.migrate();
    const legacy = before.knex;
    const lines = [{ productId: "MW-TEA-TIN", quantity: 2, unitPriceMinor: 500, currency: "EUR" }];
    const rows = [
      { id: randomUUID(), status: "confirmed", reason: "", total: 1000, steps: ["order_placed", "stock_reserved", "payment_authorized", "order_confirmed"], saga: "done", shipped: true },
      {
        id: randomUUID(),
        status: "rejected",
        reason: "card declined",
        total: 1000,
        steps: ["order_placed", "stock_reserved", "payment_declined", "payment_voided", "stock_released", "order_rejected"],
        saga: "done",
        shipped: false,
      },
      { id: randomUUID(), status: "pending", reason: "", total: 1000, steps: ["order_placed", "stock_reserved"], saga: "authorize_payment", shipped: false },
    ];
    const shipping = { recipientName: "Ada", line1: "1 Loop Rd", line2: "", city: "Berlin", postalCode: "10115", countryCode: "DE" };
    // Each order written in one transaction, as the old code did: its row and first timeline entry share now().
    for (const [index, row] of rows.entries()) {
      await legacy.transaction(async (trx) => {
        await trx("orders").insert({
          id: row.id,
          user_id: "legacy",
          idempotency_key: `legacy-key-${index}`,
          fingerprint: "f",
          request_id: `r-${index}`,
          status: row.status,
          reason: row.reason,
          lines: JSON.stringify(lines),
          total_minor: row.total,
          currency: "EUR",
          card_token: "",
          shipping_address: row.shipped ? JSON.stringify(shipping) : null,
          delivery_option: row.shipped ? "express" : null,
          created_at: trx.raw("now() - interval '1 hour'"),
        });
        await trx("sagas").insert({ order_id: row.id, step: row.saga, authorize_attempted: false });
        for (const [at, step] of row.steps.entries()) {
          await trx("order_history").insert({
            order_id: row.id,
            step,
            detail: step === "payment_declined" || step === "order_rejected" ? row.reason : "",
            occurred_at: trx.raw(`now() - interval '1 hour' + interval '${at} second'`),
          });
        }
      });
    }
    const old = await Promise.all(rows.map((row) => orderStore(legacy).get(row.id)));
    await before.close();

    const after = await openDatabase({ url, migrations, migrationsTable: "orders_migrations", log: createSilentLogger() });
    t.onTestFinished(() => after.close());
    await after.migrate();
    const store = orderStore(after.knex);
    for (const [index, row] of rows.entries()) {
      const folded = (await store.load(row.id))!;
      const was = old[index]!;
      assert.deepEqual(
        { ...withoutToken(folded), version: 0, updatedAt: undefined },
        { ...withoutToken(was), version: 0, updatedAt: undefined },
        `order ${row.status}: the fold of its migrated stream is not the old row`,
      );
      assert.equal(folded.version, row.steps.length);
      assert.deepEqual(withoutToken((await store.get(row.id))!), withoutToken(folded), "the view is the fold");
    }
    const schemas = (await after.knex("events").distinct("schema_version").pluck("schema_version")) as number[];
    assert.deepEqual(schemas, [1], "migrated events are schema 1, read through the upcasters");
    assert.equal((await rebuildOrderView(after.knex, { check: true })).differences, 0);

    // The pending order's saga goes on, appending schema 2 after the migrated events.
    const pending = rows[2]!;
    const finished = await runSaga(store, pending.id, [() => ({ kind: "authorized" })]);
    assert.equal(finished.status, "confirmed");
    assert.deepEqual(
      finished.history.map((entry) => entry.step),
      ["order_placed", "stock_reserved", "payment_authorized", "order_confirmed"],
    );
    assert.deepEqual((await after.knex("events").where("stream_id", orderStreamId(pending.id)).orderBy("version").pluck("schema_version")) as number[], [1, 1, 2, 2]);
  });
});
