import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  ListNotificationsRequestSchema,
  WatchNotificationsRequestSchema,
  type WatchNotificationsResponse,
  type WatchNotificationsResponseSchema,
} from "@meshwork/contracts/shop/notifications/v1/notifications";
import { bearerToken, Code, createSilentLogger, createWatchHub, isRpcError, type CallContext } from "@meshwork/platform";
import { createTestCallContext, rejectsWith } from "@meshwork/testing";
import { deliveryOf, eventOf } from "../test/support.js";
import { createMemoryNotificationStore } from "./adapters/notification-store.memory.js";
import { createOrderEventHandler } from "./event-handler.js";
import type { NotificationStore } from "./ports.js";
import { createNotificationHandlers, SETTLE_MS } from "./service.js";
import { createStatsBoard } from "./stats.js";

type WatchItem = MessageInitShape<typeof WatchNotificationsResponseSchema> | WatchNotificationsResponse;

/** Tests authenticate as the user named in `authorization: Bearer <user id>`. */
const authenticate = async (context: CallContext) => ({ userId: bearerToken(context), email: "" });
const as = (userId: string, signal?: AbortSignal): CallContext => createTestCallContext({ headers: { authorization: `Bearer ${userId}` }, ...(signal ? { signal } : {}) });

function fixture(options: { store?: NotificationStore; watchPollMs?: number; now?: () => number } = {}) {
  const store = options.store ?? createMemoryNotificationStore();
  const stats = createStatsBoard();
  const hub = createWatchHub((count) => stats.setWatchers(count));
  const closing = new AbortController();
  const handlers = createNotificationHandlers({ store, hub, authenticate, watchPollMs: options.watchPollMs ?? 60_000, closing: closing.signal, ...(options.now ? { now: options.now } : {}) });
  // Events handled "here" wake this instance's streams; `elsewhere` records without waking, like another instance.
  const here = createOrderEventHandler({ store, hub, stats, log: createSilentLogger() });
  const elsewhere = createOrderEventHandler({ store, hub: createWatchHub(), stats: createStatsBoard(), log: createSilentLogger() });
  return { store, stats, hub, closing, handlers, here, elsewhere };
}

/** Opens a stream and waits until the server holds it (past authentication and its "now"). */
async function openWatch(setup: ReturnType<typeof fixture>, userId: string) {
  const abort = new AbortController();
  const watchersBefore = setup.stats.snapshot().watchers;
  const iterator = setup.handlers.watchNotifications(create(WatchNotificationsRequestSchema), as(userId, abort.signal))[Symbol.asyncIterator]();
  let pending: Promise<IteratorResult<WatchItem>> = iterator.next();
  // The first next() runs the handler up to its first wait; it must not be lost.
  pending.catch(() => undefined);
  await setup.stats
    .until((stats) => stats.watchers > watchersBefore, 5000)
    .catch(async (error: unknown) => {
      await pending;
      throw error;
    });
  return {
    abort,
    async next(): Promise<WatchItem> {
      const result = await pending;
      pending = iterator.next();
      pending.catch(() => undefined);
      if (result.done) throw new Error("the stream ended");
      return result.value;
    },
    /** What the stream does next: a value, its end, or its error. */
    settle: () =>
      pending.then(
        (result) => result,
        (error: unknown) => error,
      ),
  };
}

describe("notification RPC handlers", () => {
  test("ListNotifications pages through the caller's notifications only, newest first, without repeats", async () => {
    const setup = fixture();
    const orderIds: string[] = [];
    for (let index = 0; index < 7; index++) {
      const event = eventOf({ userId: "ada", status: "placed" });
      orderIds.push(event.orderId);
      await setup.here.handle(deliveryOf(event));
      await setup.here.handle(deliveryOf(eventOf({ userId: "bob" })));
    }
    const seen: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await setup.handlers.listNotifications(create(ListNotificationsRequestSchema, { pageSize: 3, pageToken }), as("ada"));
      pages++;
      for (const notification of page.notifications ?? []) {
        assert.equal(notification.userId, "ada");
        seen.push(notification.orderId!);
      }
      pageToken = page.nextPageToken ?? "";
    } while (pageToken !== "");
    assert.equal(pages, 3);
    assert.deepEqual(seen, [...orderIds].reverse());
  });

  test("ListNotifications for a user without any is empty, with no next page", async () => {
    const { handlers } = fixture();
    assert.deepEqual(await handlers.listNotifications(create(ListNotificationsRequestSchema), as("nobody")), { notifications: [], nextPageToken: "" });
  });

  test("a notification reads back with its subject, body, order, user and time", async () => {
    const setup = fixture();
    const event = eventOf({ userId: "ada", status: "confirmed", itemCount: 2, total: { amountMinor: 2580n, currency: "EUR" } });
    await setup.here.handle(deliveryOf(event));
    const { notifications } = await setup.handlers.listNotifications(create(ListNotificationsRequestSchema), as("ada"));
    const [notification] = notifications ?? [];
    assert.equal(notification?.subject, "Order confirmed");
    assert.equal(notification?.body, `Your order ${event.orderId} (2 items) is confirmed. Total: EUR 25.80.`);
    assert.equal(notification?.orderId, event.orderId);
    assert.equal(notification?.userId, "ada");
    assert.ok(notification?.createTime);
    assert.match(notification.id ?? "", /^[0-9a-f-]{36}$/);
  });

  test("bad paging is INVALID_ARGUMENT naming the field; no token is UNAUTHENTICATED", async () => {
    const { handlers } = fixture();
    for (const [request, field] of [
      [{ pageSize: 101 }, "page_size"],
      [{ pageSize: -1 }, "page_size"],
      [{ pageToken: "forged" }, "page_token"],
    ] as const) {
      const error = await handlers.listNotifications(create(ListNotificationsRequestSchema, request), as("ada")).catch((caught: unknown) => caught);
      assert.ok(isRpcError(error, Code.INVALID_ARGUMENT) && error.field === field, `${field}: ${String(error)}`);
    }
    await rejectsWith(handlers.listNotifications(create(ListNotificationsRequestSchema), createTestCallContext()), Code.UNAUTHENTICATED, /missing authorization/);
    const stream = handlers.watchNotifications(create(WatchNotificationsRequestSchema), createTestCallContext())[Symbol.asyncIterator]();
    await rejectsWith(stream.next(), Code.UNAUTHENTICATED, /missing authorization/);
  });

  test("WatchNotifications starts from now, then streams each new notification of the caller as this instance records it", async () => {
    const setup = fixture({ watchPollMs: 60_000 });
    await setup.here.handle(deliveryOf(eventOf({ userId: "ada", status: "placed" })));
    const watch = await openWatch(setup, "ada");
    await setup.here.handle(deliveryOf(eventOf({ userId: "bob" })));
    const confirmed = eventOf({ userId: "ada", status: "confirmed" });
    await setup.here.handle(deliveryOf(confirmed));
    // The poll is a minute away: only the wake-up can deliver this in time.
    const { notification } = await watch.next();
    assert.equal(notification?.orderId, confirmed.orderId);
    assert.equal(notification?.subject, "Order confirmed");
    const rejected = eventOf({ userId: "ada", status: "rejected", reason: "out of stock" });
    await setup.here.handle(deliveryOf(rejected));
    assert.equal((await watch.next()).notification?.orderId, rejected.orderId, "bob's notification never shows up");
    watch.abort.abort();
    assert.deepEqual(await watch.settle(), { done: true, value: undefined });
    assert.equal(setup.stats.snapshot().watchers, 0, "a cancelled stream leaves nothing behind");
  });

  test("notifications recorded by another instance reach the stream through its poll", async () => {
    const setup = fixture({ watchPollMs: 20 });
    const watch = await openWatch(setup, "ada");
    const event = eventOf({ userId: "ada" });
    await setup.elsewhere.handle(deliveryOf(event));
    assert.equal((await watch.next()).notification?.orderId, event.orderId);
    watch.abort.abort();
  });

  test("a redelivered event is not streamed twice", async () => {
    const setup = fixture({ watchPollMs: 60_000 });
    const watch = await openWatch(setup, "ada");
    const first = deliveryOf(eventOf({ userId: "ada" }));
    await setup.here.handle(first);
    await setup.here.handle({ ...first, attempt: 2 });
    const marker = eventOf({ userId: "ada", status: "placed" });
    await setup.here.handle(deliveryOf(marker));
    assert.equal((await watch.next()).notification?.orderId, first.body.orderId);
    assert.equal((await watch.next()).notification?.orderId, marker.orderId, "the next one after the first is the marker, not a copy");
    watch.abort.abort();
  });

  test("a notification whose transaction commits after a later one's is still streamed, once", async () => {
    // A store in which seq 1 stays invisible until "committed", as in PostgreSQL
    // when a slower transaction took the smaller sequence number.
    const inner = createMemoryNotificationStore();
    const hidden = new Set<number>();
    const readers = new Set<(afterSeq: number) => void>();
    const store: NotificationStore = {
      ...inner,
      listAfter: async (userId, afterSeq, limit) => {
        readers.forEach((reader) => {
          reader(afterSeq);
        });
        return (await inner.listAfter(userId, afterSeq, limit)).filter((notification) => !hidden.has(notification.seq));
      },
    };
    /** Resolves at the first read that starts above `seq`. */
    const readAbove = (seq: number): Promise<void> =>
      new Promise((resolve) => {
        const reader = (afterSeq: number): void => {
          if (afterSeq < seq) return;
          readers.delete(reader);
          resolve();
        };
        readers.add(reader);
      });
    let clock = 1_000_000;
    const setup = fixture({ store, watchPollMs: 60_000, now: () => clock });
    const watch = await openWatch(setup, "ada");
    hidden.add(1);
    const slow = eventOf({ userId: "ada", status: "placed" });
    const fast = eventOf({ userId: "ada", status: "confirmed" });
    await setup.here.handle(deliveryOf(slow));
    await setup.here.handle(deliveryOf(fast));
    assert.equal((await watch.next()).notification?.orderId, fast.orderId);
    hidden.delete(1);
    setup.hub.notify("ada");
    assert.equal((await watch.next()).notification?.orderId, slow.orderId);
    // Once both have settled, the stream stops re-reading them, and still sends what is new.
    clock += SETTLE_MS + 1;
    const settled = readAbove(2);
    const later = eventOf({ userId: "ada", status: "rejected" });
    await setup.here.handle(deliveryOf(later));
    assert.equal((await watch.next()).notification?.orderId, later.orderId);
    setup.hub.notify("ada");
    await settled;
    watch.abort.abort();
  });

  test("at shutdown open streams end with UNAVAILABLE, and new ones are refused the same way", async () => {
    const setup = fixture();
    const watch = await openWatch(setup, "ada");
    setup.closing.abort();
    const ended = await watch.settle();
    assert.ok(isRpcError(ended, Code.UNAVAILABLE), String(ended));
    assert.equal(setup.stats.snapshot().watchers, 0);
    const late = setup.handlers.watchNotifications(create(WatchNotificationsRequestSchema), as("ada"))[Symbol.asyncIterator]();
    await rejectsWith(late.next(), Code.UNAVAILABLE, /shutting down/);
  });
});
