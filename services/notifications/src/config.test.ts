import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { ConfigError, describeConfig } from "@meshwork/platform";
import { loadNotificationsConfig, notificationsConfigSpec, parseDelayList } from "./config.js";

describe("notifications configuration", () => {
  test("the defaults: port 50055, the shop.orders.v1 exchange, one shared queue, three growing retry delays", () => {
    const config = loadNotificationsConfig({});
    assert.equal(config.port, 50055);
    assert.equal(config.eventsExchange, "shop.orders.v1");
    assert.equal(config.queue, "notifications.order-events");
    assert.deepEqual(config.retryDelaysMs, [1000, 5000, 30000]);
    assert.equal(config.amqpUrl, "");
  });

  test("retry delays are read from a comma-separated list", () => {
    assert.deepEqual(loadNotificationsConfig({ NOTIFICATIONS_RETRY_DELAYS_MS: "50, 200" }).retryDelaysMs, [50, 200]);
    assert.deepEqual(parseDelayList("7"), [7]);
  });

  test("a bad value stops start-up naming the variable", () => {
    for (const [key, value] of [
      ["NOTIFICATIONS_RETRY_DELAYS_MS", "1000,,5000"],
      ["NOTIFICATIONS_RETRY_DELAYS_MS", "0"],
      ["NOTIFICATIONS_RETRY_DELAYS_MS", "1s"],
      ["NOTIFICATIONS_PREFETCH", "0"],
      ["NOTIFICATIONS_PORT", "70000"],
    ] as const) {
      assert.throws(
        () => loadNotificationsConfig({ [key]: value }),
        (error: unknown) => error instanceof ConfigError && error.message.includes(key),
        `${key}=${value}`,
      );
    }
  });

  test("the AMQP URL is a secret: never shown in the settings table", () => {
    assert.ok(notificationsConfigSpec.amqpUrl.secret);
    assert.match(describeConfig(notificationsConfigSpec), /`NOTIFICATIONS_AMQP_URL` \| unset/);
  });
});
