/**
 * Notifications end to end, on real PostgreSQL and RabbitMQ: the real shop
 * places orders, orders' outbox publishes their events, and two
 * notifications instances compete for one work queue, record each event's
 * notification once, and stream it to its shopper.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, test } from "vitest";
import type { ConsumeMessage } from "amqplib";
import { Code, DEAD_LETTER_REASON_HEADER, deadLetterQueueName, isRpcError } from "@meshwork/platform";
import { countOf, placeOrder, startNotificationsCluster, watchNotifications, type Feed, type NotificationsCluster } from "./notifications-harness.js";
import { newShopper, startShop } from "./shop-harness.js";

const CONFIRMED = "Order confirmed";
const RECEIVED = "Order received";

/** Collects what lands in the work queue's dead-letter queue. */
async function collectDeadLetters(cluster: NotificationsCluster) {
  const channel = await cluster.rabbit.createChannel();
  const letters: ConsumeMessage[] = [];
  const waiters = new Set<() => void>();
  await channel.consume(
    deadLetterQueueName(cluster.queue),
    (message) => {
      if (!message) return;
      letters.push(message);
      waiters.forEach((waiter) => {
        waiter();
      });
    },
    { noAck: true },
  );
  return {
    letters,
    waitFor: (count: number, timeoutMs = 20_000) =>
      new Promise<ConsumeMessage[]>((resolve, reject) => {
        const check = (): void => {
          if (letters.length < count) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(letters);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${count} dead letters did not arrive within ${timeoutMs} ms (${letters.length} did)`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
  };
}

describe("notifications from order events, two instances on RabbitMQ", () => {
  test("each shopper gets exactly one 'Order confirmed' per order on WatchNotifications, and both instances share the work", async (t) => {
    const shop = await startShop(t);
    if (!shop) return;
    const cluster = await startNotificationsCluster(t, shop);
    if (!cluster) return;
    const shoppers = await Promise.all([0, 1, 2].map((index) => newShopper(shop, `watcher${index}`)));
    // Streams on both instances: each sees what either instance recorded.
    const feeds: Feed[] = [];
    for (const [index, shopper] of shoppers.entries()) feeds.push(await watchNotifications(t, cluster, cluster.clients[index % 2]!, shopper.headers));

    const ordersPerShopper = 3;
    const orderIds = await Promise.all(
      shoppers.map(async (shopper) => {
        const ids: string[] = [];
        for (let index = 0; index < ordersPerShopper; index++) ids.push(await placeOrder(shop, shopper.headers));
        return ids;
      }),
    );

    for (const [index, feed] of feeds.entries()) {
      const mine = orderIds[index]!;
      const received = await feed.waitUntil(
        (seen) => mine.every((orderId) => countOf(seen, orderId, CONFIRMED) >= 1 && countOf(seen, orderId, RECEIVED) >= 1),
        `shopper ${index}'s notifications`,
        30_000,
      );
      for (const orderId of mine) {
        assert.equal(countOf(received, orderId, CONFIRMED), 1, `one confirmation of ${orderId}`);
        assert.equal(countOf(received, orderId, RECEIVED), 1, `one receipt of ${orderId}`);
        assert.match(received.find((notification) => notification.orderId === orderId && notification.subject === CONFIRMED)!.body, /\(1 item\) is confirmed\. Total: EUR 9\.90\./);
      }
      assert.ok(
        received.every((notification) => notification.userId === shoppers[index]!.userId),
        "only the caller's own notifications",
      );
    }

    const events = shoppers.length * ordersPerShopper * 2;
    const total = await cluster.until((stats) => stats.handled === events);
    assert.equal(total.recorded, events);
    const [first, second] = cluster.instances.map((instance) => instance.stats.snapshot().handled);
    assert.ok(first! > 0 && second! > 0, `both instances handled events: ${first} and ${second}`);

    // What was streamed is what was recorded: the list agrees, newest first.
    for (const [index, shopper] of shoppers.entries()) {
      const { notifications } = await cluster.clients[(index + 1) % 2]!.listNotifications({ pageSize: 100 }, { headers: shopper.headers });
      assert.equal(notifications.length, ordersPerShopper * 2);
      for (const orderId of orderIds[index]!) assert.equal(countOf(notifications, orderId, CONFIRMED), 1);
      const received = feeds[index]!.received;
      assert.deepEqual(new Set(notifications.map((notification) => notification.id)), new Set(received.map((notification) => notification.id)));
    }
    assert.equal((await cluster.db("inbox").count({ n: "*" }))[0]?.n, events);
  });

  test("a redelivered event (same message id, published again) does not notify twice", async (t) => {
    const shop = await startShop(t);
    if (!shop) return;
    const cluster = await startNotificationsCluster(t, shop);
    if (!cluster) return;
    const shopper = await newShopper(shop);
    const feed = await watchNotifications(t, cluster, cluster.clients[0]!, shopper.headers);
    const orderId = await placeOrder(shop, shopper.headers);
    await feed.waitUntil((seen) => countOf(seen, orderId, CONFIRMED) === 1, "the confirmation");

    const [original] = (await shop.events.waitUntil((messages) => messages.some((message) => message.routingKey === "order.confirmed"), "the confirmed event")).filter(
      (message) => message.routingKey === "order.confirmed",
    );
    const channel = await cluster.rabbit.createConfirmChannel();
    channel.publish(shop.exchange, original!.routingKey, original!.body, {
      messageId: original!.messageId,
      type: original!.type,
      contentType: "application/json",
      headers: original!.headers,
      persistent: true,
    });
    await channel.waitForConfirms();
    await cluster.until((stats) => stats.duplicates === 1);

    // A later order's notifications mark the point by which a second copy would have been streamed.
    const later = await placeOrder(shop, shopper.headers);
    const received = await feed.waitUntil((seen) => countOf(seen, later, CONFIRMED) === 1, "the later order's confirmation");
    assert.equal(countOf(received, orderId, CONFIRMED), 1);
    const { notifications } = await cluster.clients[1]!.listNotifications({}, { headers: shopper.headers });
    assert.equal(countOf(notifications, orderId, CONFIRMED), 1);
    assert.equal(cluster.total().handled, 4, "two events per order, the copy not among them");
  });

  test("a malformed event and one of an unsupported schema version land in the dead-letter queue with their reasons, and the consumers keep going", async (t) => {
    const shop = await startShop(t);
    if (!shop) return;
    const cluster = await startNotificationsCluster(t, shop);
    if (!cluster) return;
    const dead = await collectDeadLetters(cluster);
    const shopper = await newShopper(shop);
    const feed = await watchNotifications(t, cluster, cluster.clients[1]!, shopper.headers);

    const channel = await cluster.rabbit.createConfirmChannel();
    const garbageId = `garbage-${randomUUID()}`;
    channel.publish(shop.exchange, "order.confirmed", Buffer.from("this is not an order event"), { messageId: garbageId, contentType: "application/json", persistent: true });
    const futureId = randomUUID();
    const future = { eventId: futureId, schemaVersion: 2, order: { id: randomUUID(), userId: shopper.userId, status: "ORDER_STATUS_CONFIRMED" } };
    channel.publish(shop.exchange, "order.confirmed", Buffer.from(JSON.stringify(future)), {
      messageId: futureId,
      contentType: "application/json",
      persistent: true,
      headers: { "schema-version": 2 },
    });
    await channel.waitForConfirms();

    const letters = await dead.waitFor(2);
    const reasonOf = (messageId: string): string => String(letters.find((letter) => letter.properties.messageId === messageId)?.properties.headers?.[DEAD_LETTER_REASON_HEADER]);
    assert.match(reasonOf(garbageId), /^unparseable: not a shop\.orders\.v1\.OrderStatusChanged/);
    assert.match(reasonOf(futureId), /^unparseable: unsupported schema version 2/);
    assert.equal(letters.find((letter) => letter.properties.messageId === garbageId)?.content.toString(), "this is not an order event", "the body is kept for a person to look at");
    assert.equal(cluster.total().refused, 2);

    const orderId = await placeOrder(shop, shopper.headers);
    await feed.waitUntil((seen) => countOf(seen, orderId, CONFIRMED) === 1, "the confirmation after the bad events");
    assert.equal(countOf(feed.received, futureId, CONFIRMED), 0);
    assert.equal((await cluster.db("inbox").whereIn("message_id", [garbageId, futureId])).length, 0, "refused events never enter the inbox");
  });

  test("when one instance shuts down, its streams end with UNAVAILABLE and the other instance takes all the work", async (t) => {
    const shop = await startShop(t);
    if (!shop) return;
    const cluster = await startNotificationsCluster(t, shop);
    if (!cluster) return;
    const shopper = await newShopper(shop);
    const leaving = await watchNotifications(t, cluster, cluster.clients[0]!, shopper.headers);
    const staying = await watchNotifications(t, cluster, cluster.clients[1]!, shopper.headers);
    const [gone, remaining] = cluster.instances;
    assert.equal(await gone!.shutdown.run("test: scale in"), true);
    const ended = await leaving.ended;
    assert.ok(isRpcError(ended, Code.UNAVAILABLE), `the stream on the stopped instance ends with UNAVAILABLE, got ${String(ended)}`);

    const handledBefore = gone!.stats.snapshot().handled;
    const orderId = await placeOrder(shop, shopper.headers, "tok_declined");
    const received = await staying.waitUntil((seen) => seen.some((notification) => notification.orderId === orderId && notification.subject === "Order not accepted"), "the rejection");
    assert.match(received.find((notification) => notification.subject === "Order not accepted")!.body, /card declined by the issuer\. Nothing was charged\./);
    assert.equal(gone!.stats.snapshot().handled, handledBefore, "the stopped instance took nothing");
    assert.equal(remaining!.stats.snapshot().handled, 2);
  });
});
