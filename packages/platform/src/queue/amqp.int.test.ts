/**
 * RabbitMQ-only behaviour, beyond the shared suite: what the adapter does
 * when the broker pulls its queue from under it.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "vitest";
import { createLogger } from "../logger.js";
import { createAmqpPublisher } from "../messaging/amqp-publisher.js";
import { amqpUrl, connectRabbit, deleteTestTopology, uniqueName } from "@meshwork/testing";
import { createAmqpTaskQueue } from "./amqp.js";
import type { QueueTopology } from "./ports.js";
import { createEventLog } from "@meshwork/testing";

test("a work queue deleted under a running consumer is declared again and consumption resumes", { timeout: 60_000 }, async (t) => {
  const admin = await connectRabbit(t);
  if (!admin) return;
  const lines = createEventLog<{ msg: string }>("task queue log");
  const log = createLogger({ service: "amqp-queue-test", destination: { write: (line: string) => lines.push(JSON.parse(line) as { msg: string }) } });
  const exchange = uniqueName("queue-deleted");
  const topology: QueueTopology = { exchange, bindings: ["order.#"], queue: `${exchange}.work`, retryDelaysMs: [50] };
  const queue = createAmqpTaskQueue({ url: amqpUrl(), log, drainTimeoutMs: 500 });
  const publisher = await createAmqpPublisher({ url: amqpUrl(), log, exchanges: [exchange] });
  t.onTestFinished(async () => {
    await queue.close();
    await publisher.close();
    await deleteTestTopology([topology], [exchange]);
  });

  const handled = createEventLog<string>("handled");
  const consumer = queue.consume({ ...topology, prefetch: 1, parse: (body) => new TextDecoder().decode(body), handle: async (delivery) => handled.push(delivery.body) });
  await consumer.ready();
  const subscribed = (seen: readonly { msg: string }[]): number => seen.filter((line) => line.msg === "consumer subscribed").length;

  const channel = await admin.createChannel();
  await channel.deleteQueue(topology.queue);
  await lines.until((seen) => seen.some((line) => line.msg.includes("cancelled the consumer")), "the broker cancelling the consumer");
  await lines.until((seen) => subscribed(seen) >= 2, "the consumer subscribing again");

  const body = `after the delete ${randomUUID()}`;
  await publisher.publish([
    { messageId: randomUUID(), exchange, routingKey: "order.confirmed", type: "t", contentType: "text/plain", body: new TextEncoder().encode(body), headers: {}, timestamp: new Date() },
  ]);
  await handled.until((seen) => seen.includes(body), "the message published after the delete");
  assert.equal((await channel.checkQueue(topology.queue)).consumerCount, 1, "one subscription, not a leftover one beside it");
  await consumer.stop();
});
