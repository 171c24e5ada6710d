/**
 * RabbitMQ least privilege on the real broker (127.0.0.1:5672): users made
 * with rabbitmqctl from the permissions compose and Kubernetes give the
 * services (permissions.ts), in a vhost of this run's own, deleted after.
 * The legitimate paths go through the services' real adapters (the outbox
 * relay's publisher, notifications' task queue with its retries); the refused
 * ones are plain AMQP operations a compromised service could try.
 */
import { randomBytes } from "node:crypto";
import amqp, { type ChannelModel } from "amqplib";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { rabbitmqctl, rabbitmqctlMissing } from "@meshwork/testing";
import { createSilentLogger } from "../logger.js";
import { createAmqpPublisher } from "../messaging/amqp-publisher.js";
import { createAmqpTaskQueue } from "./amqp.js";
import { AMQP_USERS, amqpPermissions, NOTHING, type AmqpPermission, type AmqpService } from "./permissions.js";

const HOST = new URL(process.env.MESHWORK_TEST_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672");
const ADMIN = decodeURIComponent(HOST.username || "guest");

const runId = randomBytes(4).toString("hex");
const vhost = `meshwork-security-${runId}`;
// The production names, so that the regexes under test are the ones deployed.
const topology = { ordersExchange: "shop.orders.v1", notificationsQueue: "notifications.order-events" };
const permissions = amqpPermissions(topology);
const log = createSilentLogger();
const users: string[] = [];
const connections: ChannelModel[] = [];

/** A broker user of this run with `permission` in its vhost; returns its AMQP URL. */
async function user(label: string, permission: AmqpPermission): Promise<string> {
  const name = `${label}-${runId}`;
  // Hex: rabbitmqctl reads an argument that starts with "-" (base64url can) as an option.
  const password = randomBytes(18).toString("hex");
  await rabbitmqctl("add_user", name, password);
  users.push(name);
  await rabbitmqctl("set_permissions", "-p", vhost, name, permission.configure, permission.write, permission.read);
  const url = new URL(HOST);
  url.username = encodeURIComponent(name);
  url.password = encodeURIComponent(password);
  url.pathname = `/${encodeURIComponent(vhost)}`;
  return url.toString();
}

async function connect(url: string): Promise<ChannelModel> {
  const connection = await amqp.connect(url);
  connection.on("error", () => undefined);
  connections.push(connection);
  return connection;
}

/** Resolves with the AMQP reply code that closed the channel. */
const closedWith = (channel: { once(event: "error", listener: (error: { code?: number; message: string }) => void): unknown }): Promise<{ code?: number; message: string }> =>
  new Promise((resolve) => channel.once("error", resolve));

const urls: Partial<Record<AmqpService, string>> = {};

beforeAll(async () => {
  // Users and vhosts are made with rabbitmqctl on the broker's machine: without it this proof cannot run, and says so.
  const missing = await rabbitmqctlMissing();
  if (missing) throw new Error(`RabbitMQ users for this test are made with rabbitmqctl, which does not answer here: ${missing}`);
  await rabbitmqctl("add_vhost", vhost);
  // The admin stands for the broker's definitions: it declares the orders
  // exchange before any service runs, as compose and Kubernetes do.
  await rabbitmqctl("set_permissions", "-p", vhost, ADMIN, ".*", ".*", ".*");
  const adminUrl = new URL(HOST);
  adminUrl.pathname = `/${encodeURIComponent(vhost)}`;
  const admin = await connect(adminUrl.toString());
  const channel = await admin.createChannel();
  await channel.assertExchange(topology.ordersExchange, "topic", { durable: true });
  await channel.close();
  urls.orders = await user(AMQP_USERS.orders, permissions.orders);
  urls.notifications = await user(AMQP_USERS.notifications, permissions.notifications);
}, 120_000);

afterAll(async () => {
  await Promise.all(connections.map((connection) => connection.close().catch(() => undefined)));
  for (const name of users) await rabbitmqctl("delete_user", name);
  // Deletes every exchange and queue of the run with it.
  await rabbitmqctl("delete_vhost", vhost);
}, 120_000);

/** notifications' consumer on `url`: the real topology with one short retry level; resolves with the attempts each message took. */
function notificationsConsumer(url: string, failFirst: boolean) {
  const queue = createAmqpTaskQueue({ url, log, drainTimeoutMs: 1000 });
  const received: { messageId: string; attempt: number }[] = [];
  const consumer = queue.consume<string>({
    exchange: topology.ordersExchange,
    bindings: ["order.#"],
    queue: topology.notificationsQueue,
    retryDelaysMs: [50],
    prefetch: 1,
    parse: (body) => Buffer.from(body).toString("utf8"),
    async handle(delivery) {
      received.push({ messageId: delivery.messageId, attempt: delivery.attempt });
      // The retry path publishes to notifications' own retry exchange and
      // comes back through its requeue exchange: both need the permissions.
      if (failFirst && delivery.attempt === 1) throw new Error("first attempt fails on purpose");
    },
  });
  return { queue, consumer, received };
}

const event = (messageId: string) => ({
  exchange: topology.ordersExchange,
  routingKey: "order.confirmed",
  messageId,
  type: "shop.orders.v1.OrderStatusChanged",
  contentType: "text/plain",
  body: new TextEncoder().encode(messageId),
  headers: {},
  timestamp: new Date(),
});

describe("RabbitMQ users with least privilege (real broker, a vhost of this run's own)", () => {
  test("orders' user publishes an order event; notifications' user consumes it from its queue, through a retry", async () => {
    const { queue, consumer, received } = notificationsConsumer(urls.notifications!, true);
    try {
      await consumer.ready();
      const publisher = await createAmqpPublisher({ url: urls.orders!, log, exchanges: [topology.ordersExchange] });
      try {
        await publisher.publish([event(`legit-${runId}`)]);
      } finally {
        await publisher.close();
      }
      await expect.poll(() => received.map((entry) => entry.attempt), { timeout: 20_000, interval: 50 }).toEqual([1, 2]);
      expect(received.every((entry) => entry.messageId === `legit-${runId}`)).toBe(true);
    } finally {
      await consumer.stop();
      await queue.close();
    }
  });

  test("notifications' user publishing to the orders exchange: the broker closes the channel with 403 ACCESS_REFUSED", async () => {
    const channel = await (await connect(urls.notifications!)).createConfirmChannel();
    const closed = closedWith(channel);
    channel.publish(topology.ordersExchange, "order.confirmed", Buffer.from("forged"), { messageId: `forged-${runId}` });
    const error = await closed;
    expect(error.code).toBe(403);
    expect(error.message).toMatch(/ACCESS_REFUSED - access to exchange 'shop\.orders\.v1' .*refused for user 'meshwork-notifications-/);
  });

  test("orders' user consuming notifications' queue, or writing into it through the default exchange: 403 ACCESS_REFUSED", async () => {
    const connection = await connect(urls.orders!);
    const consuming = await connection.createChannel();
    const consumeClosed = closedWith(consuming);
    await expect(consuming.consume(topology.notificationsQueue, () => undefined)).rejects.toThrow(
      /ACCESS_REFUSED - access to queue 'notifications\.order-events' .*refused for user 'meshwork-orders-/,
    );
    expect((await consumeClosed).code).toBe(403);

    const publishing = await connection.createConfirmChannel();
    const publishClosed = closedWith(publishing);
    publishing.sendToQueue(topology.notificationsQueue, Buffer.from("forged"));
    const error = await publishClosed;
    expect(error.code).toBe(403);
    expect(error.message).toMatch(/ACCESS_REFUSED - access to exchange 'amq\.default' .*refused for user 'meshwork-orders-/);
  });

  test("neither user may delete the other's objects or the orders exchange it does not own", async () => {
    const asNotifications = await (await connect(urls.notifications!)).createChannel();
    const closed = closedWith(asNotifications);
    await expect(asNotifications.deleteExchange(topology.ordersExchange)).rejects.toThrow(/ACCESS_REFUSED/);
    expect((await closed).code).toBe(403);
    const asOrders = await (await connect(urls.orders!)).createChannel();
    const ordersClosed = closedWith(asOrders);
    await expect(asOrders.deleteQueue(topology.notificationsQueue)).rejects.toThrow(/ACCESS_REFUSED/);
    expect((await ordersClosed).code).toBe(403);
  });

  // Each regex earns its place: with any one of them emptied, the service's
  // own legitimate path is refused by the broker.
  const kinds = ["configure", "write", "read"] as const;
  for (const service of ["orders", "notifications"] as const) {
    for (const kind of kinds.filter((kind) => permissions[service][kind] !== NOTHING)) {
      test(`${service} without its ${kind} permission (${permissions[service][kind]}) cannot do its job`, async () => {
        const url = await user(`${AMQP_USERS[service]}-no-${kind}`, { ...permissions[service], [kind]: NOTHING });
        if (service === "orders") {
          const publisher = await createAmqpPublisher({ url, log, exchanges: [topology.ordersExchange], confirmTimeoutMs: 5000 });
          try {
            await expect(publisher.publish([event(`refused-${kind}-${runId}`)])).rejects.toThrow(/ACCESS_REFUSED|closed/);
          } finally {
            await publisher.close();
          }
        } else {
          // The queue exists already (the first test): declaring it again is
          // checked exactly as creating it.
          const { queue, consumer } = notificationsConsumer(url, false);
          try {
            await expect(consumer.ready()).rejects.toThrow(/ACCESS_REFUSED/);
          } finally {
            await consumer.stop();
            await queue.close();
          }
        }
      });
    }
  }
});
