/**
 * RabbitMQ restarted in the middle of a batch of orders: the outbox relay
 * notices, waits for the broker, reconnects and catches up; no event is lost.
 * Runs alone (serial phase of npm test) because it stops the shared broker.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import { test } from "vitest";
import amqp from "amqplib";
import { Code, isRpcError } from "@meshwork/platform";
import { amqpUrl, needs, rabbitmqctl, rabbitmqctlMissing } from "@meshwork/testing";
import { newShopper, startShop } from "./shop-harness.js";

test("RabbitMQ restarted during a batch: the relay catches up and no event is lost", { timeout: 180_000 }, async (t) => {
  if (!needs(t, "a RabbitMQ node this test may restart (rabbitmqctl)", await rabbitmqctlMissing())) return;
  const shop = await startShop(t);
  if (!shop) return;
  // A durable queue outlives the restart, unlike the harness's exclusive one.
  const queue = `test.broker-restart.${randomUUID()}`;
  {
    const connection = await amqp.connect(amqpUrl());
    const channel = await connection.createChannel();
    await channel.assertExchange(shop.exchange, "topic", { durable: true });
    await channel.assertQueue(queue, { durable: true });
    await channel.bindQueue(queue, shop.exchange, "#");
    await connection.close();
  }
  t.onTestFinished(async () => {
    const connection = await amqp.connect(amqpUrl());
    const channel = await connection.createChannel();
    await channel.deleteQueue(queue);
    await connection.close();
  });

  const shopper = await newShopper(shop);
  const placeOne = async (): Promise<void> => {
    const request = { idempotencyKey: `restart-${randomUUID()}`, items: [{ productId: "MW-PENCIL-SET", quantity: 1 }], paymentMethod: { cardToken: "tok_visa" } };
    for (;;) {
      try {
        await shop.orders.placeOrder(request, { headers: shopper.headers });
        return;
      } catch (error) {
        if (!isRpcError(error, Code.UNAVAILABLE)) throw error;
        await delay(100);
      }
    }
  };

  const total = 60;
  let placed = 0;
  const batch = (async () => {
    for (let index = 0; index < total; index++) {
      await placeOne();
      placed++;
      await delay(40);
    }
  })();
  // Restart the broker while the batch is a third of the way through.
  while (placed < total / 3) await delay(20);
  const stoppedAt = Date.now();
  await rabbitmqctl("stop_app");
  await delay(1500);
  await rabbitmqctl("start_app");
  await rabbitmqctl("await_startup");
  const downMs = Date.now() - stoppedAt;
  await batch;

  // The relay catches up: the outbox empties once the broker is back.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const [{ left }] = (await shop.db.orders("outbox").whereNull("published_at").count({ left: "*" })) as [{ left: number }];
    const [{ pending }] = (await shop.db.orders("orders").where({ status: "pending" }).count({ pending: "*" })) as [{ pending: number }];
    if (left === 0 && pending === 0) break;
    if (Date.now() > deadline) assert.fail(`${left} events unpublished, ${pending} orders pending a minute after the restart`);
    await delay(200);
  }
  const expected = new Set(await shop.db.orders("outbox").pluck("message_id"));
  assert.equal(expected.size, total * 2);

  // Every event is in the durable queue (at least once; duplicates carry the same id).
  const connection = await amqp.connect(amqpUrl());
  t.onTestFinished(() => connection.close().catch(() => undefined));
  const channel = await connection.createChannel();
  const seen = new Set<string>();
  let deliveries = 0;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${seen.size} of ${expected.size} events in the queue`)), 30_000);
    void channel.consume(
      queue,
      (message) => {
        if (!message) return;
        deliveries++;
        seen.add(String(message.properties.messageId));
        if ([...expected].every((id) => seen.has(id))) {
          clearTimeout(timer);
          resolve();
        }
      },
      { noAck: true },
    );
  });
  assert.deepEqual(seen, expected);
  process.stdout.write(`# broker restart: broker down ${downMs} ms; ${total} orders, ${expected.size} events, ${deliveries} deliveries\n`);
});
