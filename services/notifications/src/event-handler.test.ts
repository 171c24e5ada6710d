import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { createSilentLogger, createWatchHub } from "@meshwork/platform";
import { deliveryOf, eventOf, orderEventJson } from "../test/support.js";
import { createMemoryNotificationStore } from "./adapters/notification-store.memory.js";
import { createOrderEventHandler } from "./event-handler.js";
import type { NotificationStore } from "./ports.js";
import { createStatsBoard } from "./stats.js";

function fixture(store: NotificationStore = createMemoryNotificationStore()) {
  const stats = createStatsBoard();
  const hub = createWatchHub();
  return { store, stats, hub, handler: createOrderEventHandler({ store, hub, stats, log: createSilentLogger() }) };
}

describe("order event handler", () => {
  test("an event is recorded as the user's notification and counted", async () => {
    const { store, stats, handler } = fixture();
    await handler.handle(deliveryOf(eventOf({ userId: "u-1", status: "placed" })));
    const [notification] = await store.list("u-1", 10, undefined);
    assert.equal(notification?.subject, "Order received");
    assert.deepEqual(stats.snapshot(), { handled: 1, duplicates: 0, recorded: 1, refused: 0, watchers: 0 });
  });

  test("a redelivery of the same message id is acknowledged without a second notification", async () => {
    const { store, stats, handler } = fixture();
    const delivery = deliveryOf(eventOf({ userId: "u-1" }));
    await handler.handle(delivery);
    await handler.handle({ ...delivery, attempt: 2 });
    assert.equal((await store.list("u-1", 10, undefined)).length, 1);
    assert.equal(stats.snapshot().duplicates, 1);
  });

  test("without a message id the event id is the inbox key, so a copy with the id set is still a duplicate", async () => {
    const { store, handler } = fixture();
    const event = eventOf({ userId: "u-1" });
    await handler.handle(deliveryOf(event, { messageId: "" }));
    await handler.handle(deliveryOf(event));
    assert.equal((await store.list("u-1", 10, undefined)).length, 1);
  });

  test("an event of an unknown status enters the inbox but notifies nobody", async () => {
    const { store, stats, handler } = fixture();
    await handler.handle(deliveryOf(eventOf({ userId: "u-1", status: undefined })));
    assert.deepEqual(await store.list("u-1", 10, undefined), []);
    assert.equal(stats.snapshot().handled, 1);
  });

  test("the user's streams are woken only after the notification is recorded", async () => {
    const { store, hub, handler } = fixture();
    const subscription = hub.watch("u-1");
    const woken = subscription.changed(60_000, new AbortController().signal).then(() => store.list("u-1", 10, undefined));
    await handler.handle(deliveryOf(eventOf({ userId: "u-1" })));
    assert.equal((await woken).length, 1);
    subscription.close();
  });

  test("when recording fails the handler throws (so the queue retries) and wakes nobody", async () => {
    const failing: NotificationStore = { ...createMemoryNotificationStore(), record: async () => Promise.reject(new Error("database down")) };
    const { hub, stats, handler } = fixture(failing);
    let woken = false;
    hub.notify = () => {
      woken = true;
    };
    await assert.rejects(handler.handle(deliveryOf(eventOf())), /database down/);
    assert.equal(woken, false);
    assert.equal(stats.snapshot().handled, 0);
  });

  test("parse refuses garbage by throwing, and counts it", () => {
    const { stats, handler } = fixture();
    assert.throws(() => handler.parse(Buffer.from("{"), "application/json"), /not a shop\.orders\.v1\.OrderStatusChanged/);
    assert.equal(handler.parse(orderEventJson(), "application/json").status, "confirmed");
    assert.equal(stats.snapshot().refused, 1);
  });
});
