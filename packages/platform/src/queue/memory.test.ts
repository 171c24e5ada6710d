/**
 * In-process queue specifics the shared suite cannot show quickly: with an
 * injected clock, production-sized back-off (1 s, 5 s, 30 s) is checked
 * without waiting for it.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "vitest";
import { createSilentLogger } from "../logger.js";
import { createMemoryBroker } from "../messaging/memory-broker.js";
import { createMemoryTaskQueue, type QueueClock } from "./memory.js";
import { DEAD_LETTER_REASON_HEADER } from "./ports.js";
import { createEventLog } from "@meshwork/testing";

interface Pending {
  readonly delayMs: number;
  readonly fire: () => void;
}

test("retries wait 1 s, 5 s and 30 s in turn, then the message is dead-lettered, on the injected clock", async (t) => {
  const pending = createEventLog<Pending>("scheduled timers");
  const clock: QueueClock = {
    schedule(callback, delayMs) {
      pending.push({ delayMs, fire: callback });
      return () => undefined;
    },
  };
  const broker = createMemoryBroker();
  const queue = createMemoryTaskQueue({ broker, log: createSilentLogger(), clock });
  t.onTestFinished(() => queue.close());
  const attempts = createEventLog<number>("attempts");
  const consumer = queue.consume({
    exchange: "shop.orders.v1",
    bindings: ["order.#"],
    queue: "notifications.order-events",
    retryDelaysMs: [1_000, 5_000, 30_000],
    prefetch: 1,
    parse: (body) => new TextDecoder().decode(body),
    handle: async (delivery) => {
      attempts.push(delivery.attempt);
      throw new Error("smtp down");
    },
  });
  await consumer.ready();
  const dead = createEventLog<string>("dead letters");
  queue.onDeadLetter((name, letter) => dead.push(`${name}: ${String(letter.headers[DEAD_LETTER_REASON_HEADER])}`));

  await broker.publisher.publish([
    { messageId: randomUUID(), exchange: "shop.orders.v1", routingKey: "order.confirmed", type: "t", contentType: "text/plain", body: new Uint8Array([104, 105]), headers: {}, timestamp: new Date() },
  ]);
  for (const [index, delayMs] of [1_000, 5_000, 30_000].entries()) {
    await pending.until((timers) => timers.length > index, `retry ${index + 1} being scheduled`);
    const timer = pending.items[index];
    assert.equal(timer?.delayMs, delayMs);
    assert.deepEqual(attempts.items, [1, 2, 3].slice(0, index + 1), "no attempt before its delay has passed");
    timer.fire();
  }
  await dead.until((letters) => letters.length === 1, "the dead letter");
  assert.deepEqual(attempts.items, [1, 2, 3, 4]);
  assert.deepEqual(dead.items, ["notifications.order-events: failed 4 attempts; last error: smtp down"]);
  assert.equal(queue.deadLetters("notifications.order-events").length, 1);
  await consumer.stop();
});
