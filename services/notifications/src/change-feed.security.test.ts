/**
 * Issue 13, edge bounds: WatchNotifications no longer polls the database once
 * a second per stream. One change feed per instance reads every user's new
 * rows and wakes only their streams.
 */
import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { create } from "@bufbuild/protobuf";
import { WatchNotificationsRequestSchema } from "@meshwork/contracts/shop/notifications/v1/notifications";
import { bearerToken, createSilentLogger, createWatchHub, type CallContext, type Logger } from "@meshwork/platform";
import { createTestCallContext } from "@meshwork/testing";
import { deliveryOf, eventOf } from "../test/support.js";
import { createMemoryNotificationStore } from "./adapters/notification-store.memory.js";
import { createChangeFeed } from "./change-feed.js";
import { createOrderEventHandler } from "./event-handler.js";
import type { NotificationStore } from "./ports.js";
import { createNotificationHandlers, SETTLE_MS } from "./service.js";
import { createStatsBoard } from "./stats.js";

const authenticate = async (context: CallContext) => ({ userId: bearerToken(context), email: "" });

/** A memory store that counts the queries made on it. */
function countingStore() {
  const inner = createMemoryNotificationStore();
  const counts = { changesAfter: 0, listAfter: new Map<string, number>() };
  const store: NotificationStore = {
    ...inner,
    changesAfter: async (afterSeq, limit) => {
      counts.changesAfter++;
      return inner.changesAfter(afterSeq, limit);
    },
    listAfter: async (userId, afterSeq, limit) => {
      counts.listAfter.set(userId, (counts.listAfter.get(userId) ?? 0) + 1);
      return inner.listAfter(userId, afterSeq, limit);
    },
  };
  return { store, counts };
}

/** An instance's streams (re-reading only every ten minutes) and another instance that records without waking them. */
function instance(store: NotificationStore) {
  const stats = createStatsBoard();
  const hub = createWatchHub((count) => stats.setWatchers(count));
  const closing = new AbortController();
  const handlers = createNotificationHandlers({ store, hub, authenticate, watchPollMs: 600_000, closing: closing.signal });
  const elsewhere = createOrderEventHandler({ store, hub: createWatchHub(), stats: createStatsBoard(), log: createSilentLogger() });
  const open = async (userId: string) => {
    const abort = new AbortController();
    const before = stats.snapshot().watchers;
    const iterator = handlers
      .watchNotifications(create(WatchNotificationsRequestSchema), createTestCallContext({ headers: { authorization: `Bearer ${userId}` }, signal: abort.signal }))
      [Symbol.asyncIterator]();
    const first = iterator.next();
    first.catch(() => undefined);
    await stats.until((now) => now.watchers > before, 5000);
    return {
      first,
      /** Hangs up: a stream paused after a message ends on return(), one waiting ends on the abort. */
      close: async () => {
        abort.abort();
        await iterator.return?.(undefined);
      },
    };
  };
  return { hub, stats, closing, elsewhere, open };
}

describe("the notifications change feed", () => {
  test("twenty open streams cost one query per poll, not twenty; only the stream of the user who got a notification reads", async () => {
    const { store, counts } = countingStore();
    const shop = instance(store);
    const feed = createChangeFeed({ store, hub: shop.hub, intervalMs: 60_000, settleMs: SETTLE_MS, log: createSilentLogger() });
    await feed.poll();
    const streams = await Promise.all(Array.from({ length: 20 }, (_, index) => shop.open(`user-${index}`)));
    counts.listAfter.clear();
    counts.changesAfter = 0;

    const event = eventOf({ userId: "user-7" });
    await shop.elsewhere.handle(deliveryOf(event));
    await feed.poll();
    const delivered = await streams[7]!.first;
    assert.equal(delivered.done, false);
    assert.equal(delivered.value?.notification?.orderId, event.orderId);
    for (let i = 0; i < 5; i++) await feed.poll();

    assert.equal(counts.changesAfter, 6, "one query per poll, whatever the number of streams");
    assert.deepEqual([...counts.listAfter], [["user-7", 1]], "no other stream read anything");
    await Promise.all(streams.map((stream) => stream.close()));
    assert.equal(shop.stats.snapshot().watchers, 0);
  });

  test("a row that commits after a later one still wakes its user, once; a gap that never fills is given up after the settle time", async () => {
    const inner = createMemoryNotificationStore();
    const hidden = new Set<number>();
    const reads: number[] = [];
    const store = {
      latestChangeSeq: () => inner.latestChangeSeq(),
      changesAfter: async (afterSeq: number, limit: number) => {
        reads.push(afterSeq);
        return (await inner.changesAfter(afterSeq, limit)).filter((change) => !hidden.has(change.seq));
      },
    };
    const woken: string[] = [];
    let clock = 1_000_000;
    const feed = createChangeFeed({ store, hub: { notify: (userId) => void woken.push(userId) }, intervalMs: 60_000, settleMs: 1000, log: createSilentLogger(), now: () => clock });
    await feed.poll();
    const record = async (userId: string): Promise<number> => (await inner.record(`m-${userId}`, [{ userId, orderId: `o-${userId}`, subject: "s", body: "b" }])).notifications[0]!.seq;

    hidden.add(await record("ada"));
    await record("bob");
    await feed.poll();
    await feed.poll();
    assert.deepEqual(woken, ["bob"], "bob woken once; ada's row is not visible yet");
    assert.deepEqual(reads.slice(-2), [0, 0], "the floor waits below the gap");

    hidden.clear();
    await feed.poll();
    assert.deepEqual(woken, ["bob", "ada"]);
    await feed.poll();
    assert.equal(reads.at(-1), 2, "no gap left: the floor is past both");

    hidden.add(await record("carl"));
    const dan = await record("dan");
    await feed.poll();
    clock += 1001;
    await feed.poll();
    await feed.poll();
    assert.deepEqual(woken, ["bob", "ada", "dan"]);
    assert.equal(reads.at(-1), dan, "a gap older than the settle time no longer holds the floor");
  });

  test("started, the feed polls on its own and goes on after a failed poll, which it logs", async () => {
    const { store } = countingStore();
    let failures = 1;
    const flaky: NotificationStore = {
      ...store,
      changesAfter: async (afterSeq, limit) => {
        if (failures-- > 0) throw new Error("connection reset");
        return store.changesAfter(afterSeq, limit);
      },
    };
    const warned: unknown[] = [];
    const log = { ...createSilentLogger(), warn: (fields: unknown) => void warned.push(fields) } as unknown as Logger;
    const shop = instance(flaky);
    const feed = createChangeFeed({ store: flaky, hub: shop.hub, intervalMs: 5, settleMs: SETTLE_MS, log });
    await feed.poll();
    const stream = await shop.open("ada");
    const event = eventOf({ userId: "ada" });
    await shop.elsewhere.handle(deliveryOf(event));
    feed.start();
    try {
      assert.equal((await stream.first).value?.notification?.orderId, event.orderId);
      assert.equal(warned.length, 1, "the failed poll was logged");
    } finally {
      await feed.close();
      await stream.close();
    }
  });
});
