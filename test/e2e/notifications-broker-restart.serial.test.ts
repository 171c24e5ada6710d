/**
 * RabbitMQ restarted while orders flow and two notifications instances
 * consume: the consumers reconnect and resume, nothing is lost and nothing is
 * notified twice (redeliveries meet the inbox). Runs alone (serial phase of
 * npm test) because it stops the shared broker.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { setTimeout as delay } from "node:timers/promises";
import { promisify } from "node:util";
import { test } from "node:test";
import { Code, isRpcError } from "@meshwork/platform";
import { needs } from "@meshwork/platform/testing";
import { placeOrder, startNotificationsCluster } from "./notifications-harness.js";
import { newShopper, startShop } from "./shop-harness.js";

const run = promisify(execFile);

test("RabbitMQ restarted mid-run: notifications consumers resume; nothing lost, nothing notified twice", { timeout: 240_000 }, async (t) => {
  const status = await run("rabbitmqctl", ["status"], { timeout: 20_000 }).then(
    () => undefined,
    (error: unknown) => `rabbitmqctl status failed: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`,
  );
  if (!needs(t, "a RabbitMQ node this test may restart (rabbitmqctl)", status)) return;
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
  await run("rabbitmqctl", ["stop_app"], { timeout: 60_000 });
  await delay(1500);
  await run("rabbitmqctl", ["start_app"], { timeout: 60_000 });
  await run("rabbitmqctl", ["await_startup"], { timeout: 60_000 });
  await placing;

  // Every order's two events (placed, final) end up recorded once, by one of the instances.
  const stats = await cluster.until((seen) => seen.recorded >= total * 2, 90_000);
  const rows: { order_id: string; subject: string; n: number }[] = await cluster
    .db("notifications")
    .whereIn("order_id", orderIds)
    .groupBy("order_id", "subject")
    .select("order_id", "subject", cluster.db.raw("count(*)::int as n"));
  assert.equal(rows.length, total * 2, "one notification per order and event kind");
  assert.ok(rows.every((row) => row.n === 1), `notified twice: ${rows.filter((row) => row.n > 1).map((row) => `${row.order_id} ${row.subject}`).join(", ")}`);
  const [first, second] = cluster.instances.map((instance) => instance.stats.snapshot());
  process.stdout.write(
    `# notifications broker restart: ${total} orders; handled ${stats.handled} (${stats.duplicates} duplicates met the inbox); instance 1 ${first?.handled}, instance 2 ${second?.handled}\n`,
  );
});
