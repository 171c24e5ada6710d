import { describe, expect, test } from "vitest";
import { amqpTopologyOf } from "./amqp-topology.js";
import { amqpPermissions, NOTHING, queueObjectsPattern } from "./permissions.js";

const topology = { ordersExchange: "shop.orders.v1", notificationsQueue: "notifications.order-events" };
const matches = (pattern: string, name: string) => new RegExp(pattern).test(name);

describe("RabbitMQ permissions derived from the topology", () => {
  test("notifications' configure and write cover every object its consumer declares, for any number of retry levels, and nothing of orders'", () => {
    const { notifications } = amqpPermissions(topology);
    for (const retries of [[], [1000], [1000, 5000, 30000], Array.from({ length: 12 }, () => 10)]) {
      const objects = amqpTopologyOf({ exchange: topology.ordersExchange, bindings: ["order.#"], queue: topology.notificationsQueue, retryDelaysMs: retries });
      const own = [objects.queue, objects.requeueExchange, objects.deadLetterExchange, objects.deadLetterQueue, ...objects.retries.flatMap((retry) => [retry.exchange, retry.queue])];
      for (const name of own) {
        expect(matches(notifications.configure, name), name).toBe(true);
        expect(matches(notifications.write, name), name).toBe(true);
        expect(matches(notifications.read, name), name).toBe(true);
      }
    }
    expect(matches(notifications.configure, "shop.orders.v1")).toBe(false);
    expect(matches(notifications.write, "shop.orders.v1")).toBe(false);
    expect(matches(notifications.read, "shop.orders.v1")).toBe(true);
  });

  test("dots are literal and names are anchored: look-alikes and other queues do not match", () => {
    const { orders, notifications } = amqpPermissions(topology);
    for (const name of ["shopXorders.v1", "shop.orders.v1.evil", "x.shop.orders.v1", "amq.default", ""]) expect(matches(orders.write, name), name).toBe(false);
    for (const name of ["notifications.order-events.retry.0", "notifications.order-events.other", "notificationsXorder-events", "other.notifications.order-events", "payments.jobs"]) {
      expect(matches(notifications.configure, name), name).toBe(false);
    }
    expect(orders.read).toBe(NOTHING);
    expect(matches(NOTHING, "")).toBe(true);
  });

  test("a name with regex characters is escaped, and an empty name is refused", () => {
    expect(matches(queueObjectsPattern("q+(1)"), "q+(1).dead")).toBe(true);
    expect(matches(queueObjectsPattern("q+(1)"), "qq(1).dead")).toBe(false);
    expect(() => amqpPermissions({ ordersExchange: "", notificationsQueue: "n" })).toThrow(/must be named/);
  });
});
