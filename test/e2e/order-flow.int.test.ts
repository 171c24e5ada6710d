/**
 * The order flow end to end, over real gRPC, on real PostgreSQL and RabbitMQ:
 * identity -> orders -> catalog and payments, events out through the outbox.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, test } from "vitest";
import { OrderStatus, SagaStep, type Order } from "@meshwork/contracts/shop/orders/v1/orders";
import { Code, isRpcError, type ServiceClient } from "@meshwork/platform";
import type { OrderService } from "@meshwork/contracts/shop/orders/v1/orders";
import { newShopper, startShop, type Shop } from "./shop-harness.js";

const FINAL = new Set([OrderStatus.CONFIRMED, OrderStatus.REJECTED, OrderStatus.FAILED]);

/** Follows the order over WatchOrder until it is final; returns every state seen. */
async function follow(orders: ServiceClient<typeof OrderService>, orderId: string, headers: Record<string, string>): Promise<Order[]> {
  const seen: Order[] = [];
  for await (const { order } of orders.watchOrder({ orderId }, { headers, timeoutMs: 30_000 })) {
    seen.push(order!);
    if (FINAL.has(order!.status)) break;
  }
  return seen;
}

const stockOf = async (shop: Shop, productId: string): Promise<number> => (await shop.db.catalog("products").where({ id: productId }).first("stock")).stock as number;
const key = () => `key-${randomUUID()}`;

describe("order flow across services", () => {
  test("a signed-in shopper's order is CONFIRMED: stock taken once, one authorization, and its events on the exchange", async (t) => {
    const shop = await startShop(t);
    if (!shop) return;
    const shopper = await newShopper(shop);
    const before = await stockOf(shop, "MW-CAST-PAN");
    const { order } = await shop.orders.placeOrder(
      { idempotencyKey: key(), items: [{ productId: "MW-CAST-PAN", quantity: 2 }], paymentMethod: { cardToken: "tok_visa" } },
      { headers: shopper.headers },
    );
    assert.equal(order?.status, OrderStatus.PENDING);
    const states = await follow(shop.orders, order!.id, shopper.headers);
    const final = states.at(-1)!;
    assert.equal(final.status, OrderStatus.CONFIRMED, final.reason);
    assert.deepEqual(
      final.history.map((entry) => entry.step),
      [SagaStep.ORDER_PLACED, SagaStep.STOCK_RESERVED, SagaStep.PAYMENT_AUTHORIZED, SagaStep.ORDER_CONFIRMED],
    );
    assert.deepEqual(final.total, { $typeName: "shop.common.v1.Money", currencyCode: "EUR", amountMinor: 9000n });
    assert.equal(await stockOf(shop, "MW-CAST-PAN"), before - 2);
    const payments = await shop.db.payments("payments").where({ order_id: order!.id }).select("status");
    assert.deepEqual(
      payments.map((row) => row.status),
      ["authorized"],
    );
    const events = await shop.events.waitFor(2);
    assert.deepEqual(
      events.map((event) => event.routingKey),
      ["order.placed", "order.confirmed"],
    );
    const body = JSON.parse(events[1]!.body.toString()) as { order: { id: string; status: string }; schemaVersion: number };
    assert.equal(body.order.id, order!.id);
    assert.equal(body.order.status, "ORDER_STATUS_CONFIRMED");
    assert.equal(body.schemaVersion, 1);
    assert.equal(events[1]!.type, "shop.orders.v1.OrderStatusChanged");
    assert.match(String(events[1]!.headers["x-request-id"]), /^[A-Za-z0-9._:-]+$/);
    // Tracing is off here (the default): no made-up trace context. With it on, see observability.int.test.ts.
    assert.equal(events[1]!.headers.traceparent, undefined);
  });

  test("a declined card: REJECTED with a readable reason, stock back where it was, payment not authorized", async (t) => {
    const shop = await startShop(t);
    if (!shop) return;
    const shopper = await newShopper(shop);
    const before = await stockOf(shop, "MW-HEADLAMP");
    const { order } = await shop.orders.placeOrder(
      { idempotencyKey: key(), items: [{ productId: "MW-HEADLAMP", quantity: 1 }], paymentMethod: { cardToken: "tok_declined" } },
      { headers: shopper.headers },
    );
    const final = (await follow(shop.orders, order!.id, shopper.headers)).at(-1)!;
    assert.equal(final.status, OrderStatus.REJECTED);
    assert.equal(final.reason, "card declined by the issuer");
    assert.ok(final.history.some((entry) => entry.step === SagaStep.STOCK_RELEASED));
    assert.equal(await stockOf(shop, "MW-HEADLAMP"), before);
    const statuses = await shop.db.payments("payments").where({ order_id: order!.id }).pluck("status");
    assert.ok(!statuses.includes("authorized"), `payments: ${statuses.join(", ")}`);
  });

  test("out of stock: REJECTED and no payment attempted", async (t) => {
    const shop = await startShop(t);
    if (!shop) return;
    const shopper = await newShopper(shop);
    const available = await stockOf(shop, "MW-RAIN-JACKET");
    const { order } = await shop.orders.placeOrder(
      { idempotencyKey: key(), items: [{ productId: "MW-RAIN-JACKET", quantity: available + 1 }], paymentMethod: { cardToken: "tok_visa" } },
      { headers: shopper.headers },
    );
    const final = (await follow(shop.orders, order!.id, shopper.headers)).at(-1)!;
    assert.equal(final.status, OrderStatus.REJECTED);
    assert.match(final.reason, /out of stock/);
    assert.equal(await stockOf(shop, "MW-RAIN-JACKET"), available);
    assert.equal((await shop.db.payments("payments").where({ order_id: order!.id })).length, 0, "payments never heard of it");
  });

  test("the same idempotency key, also sent concurrently, makes one order", async (t) => {
    const shop = await startShop(t);
    if (!shop) return;
    const shopper = await newShopper(shop);
    const request = { idempotencyKey: key(), items: [{ productId: "MW-TEA-TIN", quantity: 1 }], paymentMethod: { cardToken: "tok_visa" } };
    const results = await Promise.all(Array.from({ length: 6 }, () => shop.orders.placeOrder(request, { headers: shopper.headers })));
    const again = await shop.orders.placeOrder(request, { headers: shopper.headers });
    const ids = new Set([...results, again].map((result) => result.order!.id));
    assert.equal(ids.size, 1);
    assert.equal((await shop.db.orders("orders").where({ user_id: shopper.userId })).length, 1);
    const different = await shop.orders.placeOrder({ ...request, items: [{ productId: "MW-TEA-TIN", quantity: 2 }] }, { headers: shopper.headers }).catch((error: unknown) => error);
    assert.ok(isRpcError(different, Code.FAILED_PRECONDITION), "a key reused for another request is refused");
  });

  test("another user's order is NOT_FOUND, like a missing one; no token or a bad token is UNAUTHENTICATED", async (t) => {
    const shop = await startShop(t);
    if (!shop) return;
    const owner = await newShopper(shop, "owner");
    const stranger = await newShopper(shop, "stranger");
    const { order } = await shop.orders.placeOrder({ idempotencyKey: key(), items: [{ productId: "MW-TEA-TIN", quantity: 1 }], paymentMethod: { cardToken: "tok_visa" } }, { headers: owner.headers });
    const foreign = await shop.orders.getOrder({ orderId: order!.id }, { headers: stranger.headers }).catch((error: unknown) => error);
    const missing = await shop.orders.getOrder({ orderId: randomUUID() }, { headers: stranger.headers }).catch((error: unknown) => error);
    assert.ok(isRpcError(foreign, Code.NOT_FOUND) && isRpcError(missing, Code.NOT_FOUND));
    assert.equal(foreign.message.replace(order!.id, "ID"), (missing as Error).message.replace(/order \S+ not found/, "order ID not found"));
    assert.deepEqual((await shop.orders.listOrders({}, { headers: stranger.headers })).orders, []);
    const anonymous = await shop.orders.getOrder({ orderId: order!.id }).catch((error: unknown) => error);
    assert.ok(isRpcError(anonymous, Code.UNAUTHENTICATED));
    const forged = await shop.orders.getOrder({ orderId: order!.id }, { headers: { authorization: `${owner.headers.authorization.slice(0, -4)}AAAA` } }).catch((error: unknown) => error);
    assert.ok(isRpcError(forged, Code.UNAUTHENTICATED));
    const noTokenPlace = await shop.orders
      .placeOrder({ idempotencyKey: key(), items: [{ productId: "MW-TEA-TIN", quantity: 1 }], paymentMethod: { cardToken: "tok_visa" } })
      .catch((error: unknown) => error);
    assert.ok(isRpcError(noTokenPlace, Code.UNAUTHENTICATED));
  });

  test("bad input at every RPC: INVALID_ARGUMENT naming the field, and nothing written", async (t) => {
    const shop = await startShop(t);
    if (!shop) return;
    const shopper = await newShopper(shop);
    const base = { idempotencyKey: key(), items: [{ productId: "MW-TEA-TIN", quantity: 1 }], paymentMethod: { cardToken: "tok_visa" } };
    const cases: [() => Promise<unknown>, string][] = [
      [() => shop.orders.placeOrder({ ...base, items: [] }, { headers: shopper.headers }), "items"],
      [() => shop.orders.placeOrder({ ...base, items: [{ productId: "MW-TEA-TIN", quantity: -3 }] }, { headers: shopper.headers }), "items[0].quantity"],
      [
        () =>
          shop.orders.placeOrder(
            {
              ...base,
              items: [
                { productId: "MW-TEA-TIN", quantity: 1 },
                { productId: "MW-NO-SUCH-THING", quantity: 1 },
              ],
            },
            { headers: shopper.headers },
          ),
        "items[1].product_id",
      ],
      [() => shop.orders.placeOrder({ ...base, items: [{ productId: "x".repeat(100_000), quantity: 1 }] }, { headers: shopper.headers }), "items[0].product_id"],
      [() => shop.orders.placeOrder({ ...base, idempotencyKey: "k".repeat(5000) }, { headers: shopper.headers }), "idempotency_key"],
      [() => shop.orders.placeOrder({ ...base, paymentMethod: { cardToken: "" } }, { headers: shopper.headers }), "payment_method.card_token"],
      [() => shop.orders.getOrder({ orderId: "" }, { headers: shopper.headers }), "order_id"],
      [() => shop.orders.listOrders({ pageSize: 5000 }, { headers: shopper.headers }), "page_size"],
      [() => shop.orders.listOrders({ pageToken: "forged" }, { headers: shopper.headers }), "page_token"],
    ];
    for (const [attempt, field] of cases) {
      const error = await attempt().then(
        () => undefined,
        (caught: unknown) => caught,
      );
      assert.ok(isRpcError(error, Code.INVALID_ARGUMENT), `${field}: expected INVALID_ARGUMENT, got ${String(error)}`);
      assert.equal(error.field, field);
    }
    const watch = await (async () => {
      for await (const message of shop.orders.watchOrder({ orderId: "bad id" }, { headers: shopper.headers })) return message;
      return undefined;
    })().catch((error: unknown) => error);
    assert.ok(isRpcError(watch, Code.INVALID_ARGUMENT) && watch.field === "order_id");
    for (const table of ["orders", "sagas", "outbox"]) {
      assert.equal((await shop.db.orders(table)).length, 0, `${table} is empty`);
    }
  });
});
