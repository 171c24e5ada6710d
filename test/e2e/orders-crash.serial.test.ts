/**
 * The saga survives crashes: the orders process is SIGKILLed again and again
 * at random moments while a batch of orders is placed and worked on, and is
 * restarted each time. Afterwards every order is final, stock is conserved,
 * nothing is authorized twice or left authorized for an order that did not
 * go through, and every event reached the exchange.
 *
 * In the serial project: its kill-and-restart rhythm is what it measures, and
 * files running beside it on two cores would stretch every restart.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import { test } from "vitest";
import { Code, isRpcError } from "@meshwork/platform";
import { rebuildOrderView, rebuildSalesView } from "@meshwork/orders";
import { newShopper, startShop } from "./shop-harness.js";

const ORDERS = Number(process.env.MESHWORK_CRASH_ORDERS ?? 200);
const PRODUCTS = ["MW-HEADLAMP", "MW-CAST-PAN", "MW-RAIN-JACKET", "MW-DESK-LAMP"];
const RETRYABLE = new Set([Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.CANCELLED, Code.INTERNAL, Code.UNKNOWN]);

/** A small deterministic generator, so a failing run can be replayed with the same seed. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

test(`orders SIGKILLed at random points across ${ORDERS} orders: every order final, stock conserved, no double authorization, every event published`, { timeout: 240_000 }, async (t) => {
  const shop = await startShop(t, {
    ordersProcess: true,
    // A little processor latency keeps sagas in flight long enough for kills to land mid-saga.
    paymentsEnv: { MESHWORK_LIVE_PAYMENTS_PROCESSOR_LATENCY_MS: "15" },
  });
  if (!shop) return;
  const seed = Number(process.env.MESHWORK_CRASH_SEED ?? Date.now() % 100_000);
  const random = seeded(seed);
  process.stdout.write(`# crash test seed ${seed} (MESHWORK_CRASH_SEED to replay)\n`);

  // Scarce stock makes some orders run out, so both outcomes and compensation happen.
  await shop.db.catalog("products").whereIn("id", PRODUCTS).update({ stock: 60 });
  const initial = Object.fromEntries(PRODUCTS.map((id) => [id, 60]));
  const shoppers = await Promise.all(Array.from({ length: 8 }, (_, index) => newShopper(shop, `crash${index}`)));

  const plan = Array.from({ length: ORDERS }, () => {
    const count = 1 + Math.floor(random() * 2);
    const products = [...PRODUCTS].sort(() => random() - 0.5).slice(0, count);
    return {
      shopper: shoppers[Math.floor(random() * shoppers.length)]!,
      request: {
        idempotencyKey: `crash-${randomUUID()}`,
        items: products.map((productId) => ({ productId, quantity: 1 + Math.floor(random() * 3) })),
        paymentMethod: { cardToken: random() < 0.1 ? "tok_declined" : "tok_visa" },
      },
    };
  });

  // Placement: a client retries with the same idempotency key until the service answers.
  let placedCount = 0;
  let placementRetries = 0;
  const placing = (async () => {
    const queue = [...plan];
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let next = queue.shift(); next; next = queue.shift()) {
          const giveUpAt = Date.now() + 90_000;
          for (;;) {
            try {
              await shop.orders.placeOrder(next.request, { headers: next.shopper.headers, timeoutMs: 3000 });
              placedCount++;
              break;
            } catch (error) {
              if (!isRpcError(error) || !RETRYABLE.has(error.code) || Date.now() > giveUpAt) throw error;
              placementRetries++;
              await delay(50 + Math.floor(random() * 100));
            }
          }
        }
      }),
    );
  })();

  // Chaos: kill orders at random moments while orders are being placed and sagas run.
  let kills = 0;
  let placed = false;
  void placing.then(
    () => (placed = true),
    () => (placed = true),
  );
  const ordersProcess = shop.ordersProcess!;
  let rebuilding: ReturnType<typeof rebuildOrderView> | undefined;
  while (!placed || kills < 8) {
    // Up long enough for sagas to be mid-flight (and for placements to get through), never long enough to finish them all.
    await delay(300 + Math.floor(random() * 900));
    await ordersProcess.kill("SIGKILL");
    kills++;
    await ordersProcess.start();
    // Mid-run, the orders view is rebuilt from the streams while sagas write (and orders is killed again).
    if (kills === 3) rebuilding = rebuildOrderView(shop.db.orders);
    if (kills >= 40) break;
  }
  await placing;

  // Recovery: the restarted process drives every order to a final state.
  const deadline = Date.now() + 90_000;
  for (;;) {
    const [{ pending }] = (await shop.db.orders("orders").where({ status: "pending" }).count({ pending: "*" })) as [{ pending: number }];
    if (pending === 0) break;
    if (Date.now() > deadline) assert.fail(`${pending} orders still PENDING 90 s after the last kill`);
    await delay(250);
  }

  const orders = await shop.db.orders("orders").select("id", "status", "lines");
  assert.equal(orders.length, ORDERS, "one order per idempotency key, none lost");
  const byStatus = (status: string) => orders.filter((order) => order.status === status);
  const confirmed = byStatus("confirmed");
  assert.ok(confirmed.length > 0, "some orders went through");
  assert.equal(byStatus("pending").length, 0);

  // Stock conservation: initial = remaining + what confirmed orders took.
  for (const productId of PRODUCTS) {
    const remaining = (await shop.db.catalog("products").where({ id: productId }).first("stock")).stock as number;
    const taken = confirmed.flatMap((order) => (order.lines as { productId: string; quantity: number }[]).filter((line) => line.productId === productId)).reduce((sum, line) => sum + line.quantity, 0);
    assert.equal(remaining + taken, initial[productId], `${productId}: ${remaining} left + ${taken} confirmed`);
  }
  const held = await shop.db.catalog("reservations").where({ state: "reserved" }).pluck("order_id");
  assert.deepEqual(new Set(held), new Set(confirmed.map((order) => order.id)), "stock is held exactly for confirmed orders");

  // The streams: every order is a stream whose fold is the view GetOrder reads, to the microsecond,
  // also after a rebuild that ran while sagas wrote; and the sales view rebuilt from them is the live one.
  const rebuiltDuringRun = await rebuilding!;
  assert.equal(rebuiltDuringRun.swapped, true);
  const view = await rebuildOrderView(shop.db.orders, { check: true });
  assert.deepEqual({ streams: view.handled, differences: view.differences }, { streams: ORDERS, differences: 0 }, "the orders view rebuilt from the streams is the live one");
  const [{ events }] = (await shop.db.orders("events").count({ events: "*" })) as [{ events: number | string }];
  const sales = await rebuildSalesView(shop.db.orders, { check: true });
  assert.equal(sales.differences, 0, "the sales view rebuilt from the streams is the live one");
  const outcomes = (await shop.db.orders("sales_outcomes_by_hour").select("outcome").sum({ orders: "orders" }).groupBy("outcome")) as { outcome: string; orders: number | string }[];
  assert.equal(Number(outcomes.find((row) => row.outcome === "confirmed")?.orders ?? 0), confirmed.length, "the sales view counts every confirmed order once");

  // Payments: authorized exactly for confirmed orders; one row per order at most (primary key).
  const authorized = await shop.db.payments("payments").where({ status: "authorized" }).pluck("order_id");
  assert.deepEqual(new Set(authorized), new Set(confirmed.map((order) => order.id)), "no authorization left for an order that did not go through");
  assert.equal((await shop.db.payments("payments").where({ status: "pending" })).length, 0);

  // Events: wait until the outbox is empty, then every event reached the exchange.
  for (;;) {
    const [{ left }] = (await shop.db.orders("outbox").whereNull("published_at").count({ left: "*" })) as [{ left: number }];
    if (left === 0) break;
    if (Date.now() > deadline + 30_000) assert.fail(`${left} events never published`);
    await delay(100);
  }
  const outboxIds = await shop.db.orders("outbox").pluck("message_id");
  assert.equal(outboxIds.length, ORDERS * 2, "one placed and one final event per order");
  const expected = new Set(outboxIds);
  const messages = await shop.events.waitUntil((seen) => new Set(seen.map((message) => message.messageId)).size >= expected.size, `all ${expected.size} events`, 30_000);
  const distinct = new Set(messages.map((message) => message.messageId));
  assert.deepEqual(distinct, expected, "every event reached the exchange, no other");
  const perOrder = new Map<string, string[]>();
  for (const message of messages) {
    const body = JSON.parse(message.body.toString()) as { order: { id: string } };
    perOrder.set(body.order.id, [...(perOrder.get(body.order.id) ?? []), message.routingKey]);
  }
  for (const [orderId, keys] of perOrder) assert.equal(new Set(keys).size, 2, `${orderId}: ${keys.join(", ")}`);
  const duplicates = messages.length - distinct.size;

  process.stdout.write(
    `# crash test: ${placedCount} of ${ORDERS} orders placed, ${kills} SIGKILLs, ${ordersProcess.starts} starts, ${placementRetries} placement retries; ` +
      `confirmed ${confirmed.length}, rejected ${byStatus("rejected").length}, failed ${byStatus("failed").length}; ` +
      `${Number(events)} stream events, a rebuild during the run (${rebuiltDuringRun.handled} orders), views equal to their rebuilds; ${messages.length} deliveries of ${distinct.size} events (${duplicates} redelivered with the same message id after a kill between confirm and commit)\n`,
  );
});
