/**
 * Notifications in the all-in-one mode: the whole shop in this process on
 * embedded PGlite, orders publishing to the in-process broker and
 * notifications consuming from the in-process task queue, all over real gRPC
 * on loopback. Needs no PostgreSQL or RabbitMQ, so it always runs.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import { startCatalog } from "@meshwork/catalog";
import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { NotificationService, type Notification } from "@meshwork/contracts/shop/notifications/v1/notifications";
import { OrderService } from "@meshwork/contracts/shop/orders/v1/orders";
import { startIdentity } from "@meshwork/identity";
import { createStatsBoard, startNotifications } from "@meshwork/notifications";
import { startOrders } from "@meshwork/orders";
import { startPayments } from "@meshwork/payments";
import { createClient, createMemoryBroker, createMemoryTaskQueue, createSilentLogger, type DeadLetter } from "@meshwork/platform";
import { runAll } from "./notifications-harness.js";

const QUEUE = "notifications.order-events";

async function startEmbeddedShop(t: TestScope) {
  const cleanup: (() => unknown)[] = [];
  t.onTestFinished(() => runAll(cleanup.reverse()));
  const broker = createMemoryBroker();
  const taskQueue = createMemoryTaskQueue({ broker, log: createSilentLogger() });
  cleanup.push(() => taskQueue.close());
  const quiet = "warn";
  const [identity, catalog, payments] = await Promise.all([
    startIdentity({ IDENTITY_PORT: "0", IDENTITY_DATA_DIR: "memory://", IDENTITY_SCRYPT_N: "1024", IDENTITY_LOG_LEVEL: "error" }),
    startCatalog({ CATALOG_PORT: "0", CATALOG_DATA_DIR: "memory://", CATALOG_LOG_LEVEL: quiet }),
    startPayments({ PAYMENTS_PORT: "0", PAYMENTS_DATA_DIR: "memory://", PAYMENTS_LOG_LEVEL: quiet }),
  ]);
  for (const service of [identity, catalog, payments]) cleanup.push(() => service.shutdown.run("test done"));
  const stats = createStatsBoard();
  const notifications = await startNotifications(
    { NOTIFICATIONS_PORT: "0", NOTIFICATIONS_DATA_DIR: "memory://", NOTIFICATIONS_IDENTITY_ADDR: `127.0.0.1:${identity.port}`, NOTIFICATIONS_RETRY_DELAYS_MS: "50", NOTIFICATIONS_LOG_LEVEL: quiet },
    { taskQueue, stats },
  );
  cleanup.push(() => notifications.shutdown.run("test done"));
  const orders = await startOrders(
    {
      ORDERS_PORT: "0",
      ORDERS_DATA_DIR: "memory://",
      ORDERS_CATALOG_ADDR: `127.0.0.1:${catalog.port}`,
      ORDERS_PAYMENTS_ADDR: `127.0.0.1:${payments.port}`,
      ORDERS_IDENTITY_ADDR: `127.0.0.1:${identity.port}`,
      ORDERS_LOG_LEVEL: quiet,
    },
    { broker },
  );
  cleanup.push(() => orders.shutdown.run("test done"));

  const clients = {
    identity: createClient(IdentityService, { target: `127.0.0.1:${identity.port}` }),
    orders: createClient(OrderService, { target: `127.0.0.1:${orders.port}` }),
    notifications: createClient(NotificationService, { target: `127.0.0.1:${notifications.port}` }),
  };
  cleanup.push(() =>
    Object.values(clients).forEach((client) => {
      client.close();
    }),
  );
  const email = `embedded-${randomUUID()}@example.test`;
  await clients.identity.client.signUp({ email, password: "correct horse battery", displayName: "Embedded" });
  const { accessToken } = await clients.identity.client.signIn({ email, password: "correct horse battery" });
  return { broker, taskQueue, notifications: { ...notifications, stats }, clients, headers: { authorization: `Bearer ${accessToken}` } };
}

describe("notifications in the all-in-one mode (in-process queue, PGlite)", () => {
  test("an order placed through orders reaches its shopper's WatchNotifications through the in-process queue", async (t) => {
    const shop = await startEmbeddedShop(t);
    const abort = new AbortController();
    t.onTestFinished(() => abort.abort());
    const stream = shop.clients.notifications.client.watchNotifications({}, { headers: shop.headers, signal: abort.signal })[Symbol.asyncIterator]();
    const first = stream.next();
    await shop.notifications.stats.until((stats) => stats.watchers === 1, 10_000);

    const { order } = await shop.clients.orders.client.placeOrder(
      { idempotencyKey: randomUUID(), items: [{ productId: "MW-HEADLAMP", quantity: 2 }], paymentMethod: { cardToken: "tok_visa" } },
      { headers: shop.headers },
    );
    const received: Notification[] = [];
    let next = first;
    for (;;) {
      const result = await next;
      assert.ok(!result.done, "the stream went on");
      received.push(result.value.notification!);
      if (received.length === 2) break;
      next = stream.next();
    }
    assert.deepEqual(
      received.map((notification) => [notification.orderId, notification.subject]),
      [
        [order!.id, "Order received"],
        [order!.id, "Order confirmed"],
      ],
    );
    assert.equal(received[1]!.body, `Your order ${order!.id} (2 items) is confirmed. Total: EUR 69.80.`);
    const { notifications } = await shop.clients.notifications.client.listNotifications({}, { headers: shop.headers });
    assert.deepEqual(
      notifications.map((notification) => notification.subject),
      ["Order confirmed", "Order received"],
    );
  });

  test("an unreadable event is dead-lettered in process with its reason, and the next good one is handled", async (t) => {
    const shop = await startEmbeddedShop(t);
    const deadLetter = new Promise<DeadLetter>((resolve) => shop.taskQueue.onDeadLetter((queue, letter) => queue === QUEUE && resolve(letter)));
    await shop.broker.publisher.publish([
      {
        messageId: "bad-1",
        exchange: "shop.orders.v1",
        routingKey: "order.placed",
        type: "shop.orders.v1.OrderStatusChanged",
        contentType: "application/json",
        body: Buffer.from("{}"),
        headers: {},
        timestamp: new Date(),
      },
    ]);
    const letter = await deadLetter;
    assert.equal(letter.messageId, "bad-1");
    assert.equal(letter.reason, "unparseable: schema_version is missing");
    await shop.clients.orders.client.placeOrder(
      { idempotencyKey: randomUUID(), items: [{ productId: "MW-TEA-TIN", quantity: 1 }], paymentMethod: { cardToken: "tok_visa" } },
      { headers: shop.headers },
    );
    await shop.notifications.stats.until((stats) => stats.handled === 2, 10_000);
    assert.equal(shop.notifications.stats.snapshot().refused, 1);
  });
});
