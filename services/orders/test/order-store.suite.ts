import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { orderStreamId } from "../src/order-events.js";
import { IdempotencyConflictError } from "../src/orders.js";
import { eventFactory, newOrder, orderStore, ordersDatabase, outboxRoutingKeys, type Engine } from "./support.js";

/** The order store on `engine`: run on PGlite by order-store.test.ts, on PostgreSQL by order-store.int.test.ts. */
export function orderStoreSuite(engine: Engine): void {
  describe(`order store on ${engine}`, () => {
    test("placing writes the order, its saga, its timeline and its event in one go", async (t) => {
      const db = await ordersDatabase(t, engine);
      if (!db) return;
      const store = orderStore(db);
      const { order, created } = await store.place(newOrder("u1"), eventFactory);
      assert.equal(created, true);
      assert.equal(order.status, "pending");
      assert.deepEqual(
        order.history.map((entry) => entry.step),
        ["order_placed"],
      );
      assert.deepEqual(await outboxRoutingKeys(db, order.id), ["order.placed"]);
      assert.equal(await store.pendingSagas(), 1);
    });

    test("the same key returns the same order, even when sent concurrently; a different request with it is refused", async (t) => {
      const db = await ordersDatabase(t, engine);
      if (!db) return;
      const store = orderStore(db);
      const template = newOrder("u1");
      const results = await Promise.all(Array.from({ length: 8 }, () => store.place({ ...template, id: crypto.randomUUID() }, eventFactory)));
      assert.equal(new Set(results.map((result) => result.order.id)).size, 1);
      assert.equal(results.filter((result) => result.created).length, 1);
      assert.equal((await db("orders").count({ n: "*" }))[0]?.n, 1);
      await assert.rejects(
        store.place({ ...newOrder("u1", { idempotencyKey: template.request.idempotencyKey, items: [{ productId: "MW-TEA-TIN", quantity: 2 }] }) }, eventFactory),
        IdempotencyConflictError,
      );
      // The key is per user: another user may use it.
      const other = await store.place({ ...template, id: crypto.randomUUID(), userId: "u2" }, eventFactory);
      assert.equal(other.created, true);
    });

    test("a saga is leased by one owner at a time, and its lease can be taken over once expired", async (t) => {
      const db = await ordersDatabase(t, engine);
      if (!db) return;
      const store = orderStore(db);
      const { order } = await store.place(newOrder("u1"), eventFactory);
      const [first] = await store.claim("owner-a", 10, 60_000);
      assert.equal(first?.orderId, order.id);
      assert.deepEqual(await store.claim("owner-b", 10, 60_000), [], "held by owner-a");
      await db("sagas").update({ lease_until: db.raw("now() - interval '1 second'") });
      const [taken] = await store.claim("owner-b", 10, 60_000);
      assert.equal(taken?.leaseOwner, "owner-b");
      const stale = await store.apply(
        first!,
        (await store.get(order.id))!,
        { step: "authorize_payment", attempts: 0, delayMs: 0, authorizeAttempted: false, outcome: undefined, history: [] },
        60_000,
        eventFactory,
      );
      assert.equal(stale, undefined, "the old owner can no longer write");
    });

    test("applying a final decision changes status and enqueues exactly one event", async (t) => {
      const db = await ordersDatabase(t, engine);
      if (!db) return;
      const store = orderStore(db);
      const { order } = await store.place(newOrder("u1"), eventFactory);
      const [saga] = await store.claim("me", 1, 60_000);
      const reserved = await store.apply(
        saga!,
        (await store.get(order.id))!,
        {
          step: "authorize_payment",
          attempts: 0,
          delayMs: 0,
          authorizeAttempted: false,
          outcome: undefined,
          lines: [{ productId: "MW-TEA-TIN", quantity: 1, unitPriceMinor: 990, currency: "EUR" }],
          history: [{ step: "stock_reserved", detail: "" }],
        },
        60_000,
        eventFactory,
      );
      assert.equal(reserved?.order.totalMinor, 990);
      assert.equal(reserved?.order.currency, "EUR");
      const confirmed = await store.apply(
        reserved!.saga,
        reserved!.order,
        {
          step: "done",
          attempts: 0,
          delayMs: 0,
          authorizeAttempted: true,
          outcome: undefined,
          status: "confirmed",
          reason: "",
          history: [
            { step: "payment_authorized", detail: "" },
            { step: "order_confirmed", detail: "" },
          ],
        },
        60_000,
        eventFactory,
      );
      assert.equal(confirmed?.order.status, "confirmed");
      assert.deepEqual(
        confirmed?.order.history.map((entry) => entry.step),
        ["order_placed", "stock_reserved", "payment_authorized", "order_confirmed"],
      );
      assert.deepEqual(await outboxRoutingKeys(db, order.id), ["order.placed", "order.confirmed"]);
      assert.equal(await store.pendingSagas(), 0);
      assert.deepEqual(await store.claim("me", 1, 60_000), [], "a finished saga is never claimed again");
    });

    test("each outbox message announces the order as stored, at its events' time", async (t) => {
      const db = await ordersDatabase(t, engine);
      if (!db) return;
      const store = orderStore(db);
      const { order: placed, saga } = await store.place(newOrder("u1"), eventFactory, { owner: "me", leaseMs: 60_000 });
      const rejected = await store.apply(
        saga!,
        placed,
        {
          step: "done",
          attempts: 0,
          delayMs: 0,
          authorizeAttempted: false,
          outcome: { status: "rejected", reason: "out of stock" },
          status: "rejected",
          reason: "out of stock",
          history: [
            { step: "stock_refused", detail: "out of stock" },
            { step: "order_rejected", detail: "out of stock" },
          ],
        },
        60_000,
        eventFactory,
      );
      assert.equal(rejected?.order.status, "rejected");
      const bodies: { event_id: string; body: Uint8Array }[] = await db("outbox").where({ aggregate_id: placed.id }).orderBy("id").select("message_id as event_id", "body");
      const announced = bodies.map(({ body }) => JSON.parse(Buffer.from(body).toString()) as Record<string, unknown>);
      // The message the factory builds from each order as returned (which the stream folds the same), but for the event's id.
      const expected = [eventFactory(placed, undefined), eventFactory(rejected!.order, "pending")].map((event, index) => ({
        ...(JSON.parse(Buffer.from(event.body).toString()) as Record<string, unknown>),
        eventId: bodies[index]?.event_id,
      }));
      assert.deepEqual(announced, expected);
      const recorded: Date[] = await db("events")
        .where({ stream_id: orderStreamId(placed.id) })
        .orderBy("version")
        .pluck("recorded_at");
      assert.deepEqual(
        rejected?.order.history.map((entry) => entry.occurredAt.getTime()),
        recorded.map((time) => new Date(time).getTime()),
      );
    });

    test("lists a user's orders newest first, page by page", async (t) => {
      const db = await ordersDatabase(t, engine);
      if (!db) return;
      const store = orderStore(db);
      const ids: string[] = [];
      for (let index = 0; index < 5; index++) ids.push((await store.place(newOrder("lister"), eventFactory)).order.id);
      await store.place(newOrder("someone-else"), eventFactory);
      const first = await store.list("lister", 3, undefined);
      const last = first.at(-1)!;
      const second = await store.list("lister", 3, { createdAt: last.createdAt, id: last.id });
      const seen = [...first, ...second].map((order) => order.id);
      assert.equal(seen.length, 5);
      assert.deepEqual(new Set(seen), new Set(ids));
      const times = [...first, ...second].map((order) => order.createdAt.getTime());
      assert.deepEqual(
        times,
        [...times].sort((a, b) => b - a),
      );
    });
  });
}

/**
 * ListOrders' page token keeps full precision (security issue 13, point 8):
 * run by the security suite on both engines (order-store-page-token.security*.test.ts).
 */
export function orderStorePageTokenSuite(engine: Engine): void {
  describe(`order store page tokens on ${engine}`, () => {
    test("pages through orders placed in the same millisecond without skipping one (created_at keeps microseconds)", async (t) => {
      const db = await ordersDatabase(t, engine);
      if (!db) return;
      const store = orderStore(db);
      const ids: string[] = [];
      for (let index = 0; index < 6; index++) ids.push((await store.place(newOrder("same-ms"), eventFactory)).order.id);
      // Six orders within one millisecond, microseconds apart, their ids in the opposite order of their times.
      const byId = [...ids].sort();
      for (const [index, id] of byId.entries()) {
        await db("orders")
          .where({ id })
          .update({ created_at: db.raw("timestamptz '2026-12-06 12:00:00.123000+00' + make_interval(secs => ?)", [(byId.length - index) * 0.0001]) });
      }
      const seen: string[] = [];
      let after: { createdAt: Date; id: string } | undefined;
      for (let page = 0; page < 10; page++) {
        const found = await store.list("same-ms", 1, after);
        if (found.length === 0) break;
        seen.push(found[0]!.id);
        after = { createdAt: found[0]!.createdAt, id: found[0]!.id };
      }
      // Newest first: the smallest id carries the latest time.
      assert.deepEqual(seen, byId);
    });
  });
}
