/**
 * RabbitMQ restarted (stop_app, start_app) while messages flow through a task
 * queue: the consumer notices, reconnects through amqplib's recovery,
 * re-declares its topology, subscribes again and carries on. Every message
 * published before, during (the publisher retries until confirmed) and after
 * the restart is handled at least once — including messages that were
 * waiting in a delay queue for their retry when the broker went down.
 * Runs alone (serial phase of npm test) because it stops the shared broker.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "vitest";
import { setTimeout as delay } from "node:timers/promises";
import { createLogger } from "../logger.js";
import { createAmqpPublisher } from "../messaging/amqp-publisher.js";
import type { OutgoingMessage } from "../messaging/ports.js";
import { amqpUrl, connectRabbit, createEventLog, deleteTestTopology, needs, rabbitmqctl, rabbitmqctlMissing, uniqueName } from "@meshwork/testing";
import { createAmqpTaskQueue } from "./amqp.js";
import type { QueueTopology } from "./ports.js";

test("RabbitMQ restarted while messages flow: the consumer reconnects and resumes, and no message is lost", { timeout: 180_000 }, async (t) => {
  if (!needs(t, "a RabbitMQ node this test may restart (rabbitmqctl)", await rabbitmqctlMissing())) return;
  if (!(await connectRabbit(t))) return;

  // The adapter's own log says when it lost the broker and subscribed again.
  const lines = createEventLog<{ msg: string }>("task queue log");
  const log = createLogger({ service: "broker-restart-test", level: "info", destination: { write: (line: string) => lines.push(JSON.parse(line) as { msg: string }) } });
  const exchange = uniqueName("restart");
  const topology: QueueTopology = { exchange, bindings: ["order.#"], queue: `${exchange}.work`, retryDelaysMs: [200, 500] };
  const queue = createAmqpTaskQueue({ url: amqpUrl(), log, drainTimeoutMs: 2_000 });
  const publisher = await createAmqpPublisher({ url: amqpUrl(), log, exchanges: [exchange], confirmTimeoutMs: 2_000 });
  t.onTestFinished(async () => {
    await queue.close();
    await publisher.close();
    await deleteTestTopology([topology], [exchange]);
  });

  const handled = createEventLog<string>("handled messages");
  let deliveries = 0;
  const consumer = queue.consume({
    ...topology,
    prefetch: 5,
    parse: (body) => JSON.parse(new TextDecoder().decode(body)) as { n: number },
    async handle(delivery) {
      deliveries++;
      // Every seventh message fails once: its retry waits in a durable delay
      // queue, some of them across the restart.
      if (delivery.body.n % 7 === 0 && delivery.attempt === 1) throw new Error("first attempt fails");
      await delay(2);
      handled.push(delivery.messageId);
    },
  });
  await consumer.ready();

  const total = 150;
  const published = createEventLog<string>("published messages");
  let publishRetries = 0;
  const publishOne = async (n: number): Promise<void> => {
    const message: OutgoingMessage = {
      messageId: randomUUID(),
      exchange,
      routingKey: `order.n${n}`,
      type: "test.queue.v1.Event",
      contentType: "application/json",
      body: new TextEncoder().encode(JSON.stringify({ n })),
      headers: {},
      timestamp: new Date(),
    };
    // The broker being down is the point: retry until confirmed (same id, so a
    // publish that was confirmed but not reported is only a duplicate).
    for (;;) {
      try {
        await publisher.publish([message]);
        published.push(message.messageId);
        return;
      } catch {
        publishRetries++;
        await delay(100);
      }
    }
  };
  const flow = (async () => {
    for (let n = 0; n < total; n++) {
      await publishOne(n);
      await delay(20);
    }
  })();

  // Restart the broker a third of the way through.
  await published.until((ids) => ids.length >= total / 3, "a third of the messages published", 60_000);
  const stoppedAt = Date.now();
  await rabbitmqctl("stop_app");
  await lines.until((seen) => seen.some((line) => line.msg.includes("lost the broker")), "the consumer noticing the broker is gone", 30_000);
  // Stay down a moment (as test/e2e does): publishes in this window fail and are retried.
  await delay(1_500);
  const publishedBeforeRestart = published.items.length;
  await rabbitmqctl("start_app");
  await rabbitmqctl("await_startup");
  const downMs = Date.now() - stoppedAt;
  await flow;

  const expected = new Set(published.items);
  assert.equal(expected.size, total);
  await handled.until((seen) => [...expected].every((id) => seen.includes(id)), `all ${total} messages handled`, 90_000);

  const subscriptions = lines.items.filter((line) => line.msg === "consumer subscribed").length;
  assert.ok(subscriptions >= 2, `the consumer subscribed again after the restart (${subscriptions} subscriptions)`);
  assert.ok(publishedBeforeRestart < total, "messages were still being published after the restart");
  const duplicates = handled.items.length - new Set(handled.items).size;
  process.stdout.write(
    `# queue broker restart: down ${downMs} ms; ${total} messages (${publishedBeforeRestart} published before the broker came back), ${publishRetries} publish retries, ${deliveries} deliveries, ${duplicates} handled twice\n`,
  );
  await consumer.stop();
});
