/**
 * RabbitMQ restarted while orders flow and two notifications instances
 * consume: the consumers reconnect and resume, nothing is lost and nothing is
 * notified twice (redeliveries meet the inbox). Runs alone (serial phase of
 * npm test) because it stops the shared broker.
 */
import assert from "node:assert/strict";
import { setTimeout as delay } from "node:timers/promises";
import { test } from "vitest";
import { Code, isRpcError } from "@meshwork/platform";
import { needs, rabbitmqctl, rabbitmqctlMissing } from "@meshwork/testing";
import { placeOrder, startNotificationsCluster } from "./notifications-harness.js";
import { newShopper, startShop } from "./shop-harness.js";

test("RabbitMQ restarted mid-run: notifications consumers resume; nothing lost, nothing notified twice", { timeout: 240_000 }, async (t) => {
  if (!needs(t, "a RabbitMQ node this test may restart (rabbitmqctl)", await rabbitmqctlMissing())) return;
  const shop = await startShop(t);
  if (!shop) return;
  const cluster = await startNotificationsCluster(t, shop);
  if (!cluster) return;
  const shopper = await newShopper(shop, "restart");

  const total = 40;
  const orderIds: string[] = [];
  const placing = (async () => {
    for (let index = 0; index < total; index++) {
      for (;;) {
        try {
          orderIds.push(await placeOrder(shop, shopper.headers));
          break;
        } catch (error) {
          if (!isRpcError(error, Code.UNAVAILABLE)) throw error;
          await delay(100);
        }
      }
      await delay(50);
    }
  })();
  while (orderIds.length < total / 3) await delay(20);
  await rabbitmqctl("stop_app");
  await delay(1500);
  await rabbitmqctl("start_app");
  await rabbitmqctl("await_startup");
  await placing;

  // Every order's two events (placed, final) end up recorded once, by one of the instances.
  const stats = await cluster.until((seen) => seen.recorded >= total * 2, 90_000);
  const rows: { order_id: string; subject: string; n: number }[] = await cluster
    .db("notifications")
    .whereIn("order_id", orderIds)
    .groupBy("order_id", "subject")
    .select("order_id", "subject", cluster.db.raw("count(*)::int as n"));
  assert.equal(rows.length, total * 2, "one notification per order and event kind");
  assert.ok(
    rows.every((row) => row.n === 1),
    `notified twice: ${rows
      .filter((row) => row.n > 1)
      .map((row) => `${row.order_id} ${row.subject}`)
      .join(", ")}`,
  );
  const [first, second] = cluster.instances.map((instance) => instance.stats.snapshot());
  process.stdout.write(
    `# notifications broker restart: ${total} orders; handled ${stats.handled} (${stats.duplicates} duplicates met the inbox); instance 1 ${first?.handled}, instance 2 ${second?.handled}\n`,
  );
});
