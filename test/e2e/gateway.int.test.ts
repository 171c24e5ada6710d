/**
 * The gateway in front of the real shop (identity, catalog, payments and
 * orders on PostgreSQL, order events on RabbitMQ): what a browser with a
 * Connect client and an external gRPC client can do through the edge, and
 * what the edge refuses. Notifications are not part of the shop here (their
 * path through the gateway is covered with a stand-in in gateway-edge.test.ts).
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, test } from "vitest";
import { Code } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { CatalogService, StockService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { OrderService, OrderStatus, type Order } from "@meshwork/contracts/shop/orders/v1/orders";
import { Code as GrpcCode, createClient, isRpcError, type ServiceClient } from "@meshwork/platform";
import { CLOSED_ADDRESS, connectClient, GENEROUS_LIMITS, signedInShopper, startTestGateway } from "./gateway-harness.js";
import { startShop, type Shop } from "./shop-harness.js";
import { connectError } from "@meshwork/testing";

const FINAL = new Set([OrderStatus.CONFIRMED, OrderStatus.REJECTED, OrderStatus.FAILED]);
const TIMEOUT = { timeout: 120_000 };

const gatewayEnvFor = (shop: Shop, extra: Record<string, string> = {}): Record<string, string> => ({
  GATEWAY_IDENTITY_ADDR: shop.addresses.identity,
  GATEWAY_CATALOG_ADDR: shop.addresses.catalog,
  GATEWAY_ORDERS_ADDR: shop.addresses.orders,
  GATEWAY_PAYMENTS_ADDR: shop.addresses.payments,
  GATEWAY_NOTIFICATIONS_ADDR: CLOSED_ADDRESS,
  GATEWAY_CORS_ORIGINS: "http://shop.example",
  ...GENEROUS_LIMITS,
  ...extra,
});

describe("the gateway in front of the real shop (PostgreSQL, RabbitMQ)", () => {
  test("a Connect JSON client over HTTP/1.1 signs up and in, browses, orders, and follows WatchOrder to CONFIRMED", TIMEOUT, async (t) => {
    const shop = await startShop(t);
    if (!shop) return;
    const gateway = await startTestGateway(t, gatewayEnvFor(shop), shop.defer);
    const transport = createConnectTransport({ baseUrl: gateway.baseUrl, httpVersion: "1.1" });
    const shopper = await signedInShopper(connectClient(IdentityService, transport));
    const headers = { authorization: shopper.authorization };

    const catalog = connectClient(CatalogService, transport);
    const { products } = await catalog.listProducts({ pageSize: 5 });
    assert.equal(products.length, 5);
    const { product } = await catalog.getProduct({ productId: "MW-HEADLAMP" });
    assert.equal(product?.name, "Headlamp");

    const orders = connectClient(OrderService, transport);
    const requestId = `gw-int-${randomUUID()}`;
    let echoed: string | null = null;
    const { order } = await orders.placeOrder(
      { idempotencyKey: randomUUID(), items: [{ productId: "MW-HEADLAMP", quantity: 1 }], paymentMethod: { cardToken: "tok_visa" } },
      { headers: { ...headers, "x-request-id": requestId }, onHeader: (response) => (echoed = response.get("x-request-id")) },
    );
    assert.equal(order?.status, OrderStatus.PENDING);
    assert.equal(echoed, requestId);

    const seen: Order[] = [];
    // A signal, not timeoutMs: connect-es leaves a timeoutMs timer running
    // when the loop breaks early, which keeps the test process alive for it.
    for await (const update of orders.watchOrder({ orderId: order!.id }, { headers, signal: AbortSignal.timeout(30_000) })) {
      seen.push(update.order!);
      if (FINAL.has(update.order!.status)) break;
    }
    assert.equal(seen.at(-1)?.status, OrderStatus.CONFIRMED, seen.at(-1)?.reason);

    // The request id the caller chose travelled down: orders stamps it on the order's events.
    const events = await shop.events.waitUntil((messages) => messages.some((message) => message.routingKey === "order.confirmed"), "order.confirmed");
    assert.ok(
      events.every((event) => event.headers["x-request-id"] === requestId),
      JSON.stringify(events.map((event) => event.headers["x-request-id"])),
    );
  });

  test("a grpc-js client through the gateway port does the same, and is refused what it must be", TIMEOUT, async (t) => {
    const shop = await startShop(t);
    if (!shop) return;
    const gateway = await startTestGateway(t, gatewayEnvFor(shop), shop.defer);
    const target = `127.0.0.1:${gateway.port}`;
    const identity = createClient(IdentityService, { target });
    const catalog = createClient(CatalogService, { target });
    const orders = createClient(OrderService, { target });
    const stock = createClient(StockService, { target });
    t.onTestFinished(() =>
      [identity, catalog, orders, stock].forEach((client) => {
        client.close();
      }),
    );

    const email = `grpc-${randomUUID()}@example.test`;
    await identity.client.signUp({ email, password: "correct horse battery", displayName: "gRPC" });
    const { accessToken } = await identity.client.signIn({ email, password: "correct horse battery" });
    const headers = { authorization: `Bearer ${accessToken}` };
    const { products } = await catalog.client.listProducts({ pageSize: 3 });
    assert.equal(products.length, 3);

    const { order } = await orders.client.placeOrder({ idempotencyKey: randomUUID(), items: [{ productId: "MW-CAST-PAN", quantity: 1 }], paymentMethod: { cardToken: "tok_visa" } }, { headers });
    const final = await followToFinal(orders.client, order!.id, headers);
    assert.equal(final.status, OrderStatus.CONFIRMED, final.reason);

    await assert.rejects(orders.client.listOrders({}), (error) => isRpcError(error, GrpcCode.UNAUTHENTICATED));
    await assert.rejects(stock.client.reserveStock({ orderId: "o-1", items: [{ productId: "MW-CAST-PAN", quantity: 1 }] }), (error) => isRpcError(error, GrpcCode.UNIMPLEMENTED));
    // Bad input still names its field through the edge.
    await assert.rejects(
      orders.client.placeOrder({ idempotencyKey: randomUUID(), items: [{ productId: "MW-CAST-PAN", quantity: -1 }], paymentMethod: { cardToken: "tok_visa" } }, { headers }),
      (error) => isRpcError(error, GrpcCode.INVALID_ARGUMENT) && error.field !== undefined,
    );
  });

  test("the edge refuses in front of the real shop: no token, internal RPCs, 10 MB, a foreign origin, and too many calls", TIMEOUT, async (t) => {
    const shop = await startShop(t);
    if (!shop) return;
    const gateway = await startTestGateway(t, gatewayEnvFor(shop), shop.defer);
    const json = createConnectTransport({ baseUrl: gateway.baseUrl, httpVersion: "1.1" });

    const unauthenticated = await connectError(connectClient(OrderService, json).listOrders({}));
    assert.equal(unauthenticated.code, Code.Unauthenticated);
    const internal = await connectError(connectClient(StockService, json).reserveStock({ orderId: "o-1", items: [{ productId: "MW-HEADLAMP", quantity: 1 }] }));
    assert.equal(internal.code, Code.Unimplemented);
    const stockBefore = (await shop.db.catalog("products").where({ id: "MW-HEADLAMP" }).first("stock")).stock as number;
    assert.equal(stockBefore, (await connectClient(CatalogService, json).getProduct({ productId: "MW-HEADLAMP" })).product?.stockAvailable, "nothing was reserved");

    const huge = await fetch(`${gateway.baseUrl}/shop.identity.v1.IdentityService/SignUp`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "big@example.test", password: "correct horse battery", displayName: "x".repeat(10 * 1024 * 1024) }),
    });
    assert.equal(huge.status, 413);
    const plain = await fetch(`${gateway.baseUrl}/shop.catalog.v1.CatalogService/ListProducts`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    assert.equal(plain.status, 200, "still serving after the 10 MB request");
    assert.ok(((await plain.json()) as { products: unknown[] }).products.length > 0);

    const preflight = (origin: string) =>
      fetch(`${gateway.baseUrl}/shop.orders.v1.OrderService/PlaceOrder`, {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" },
      });
    assert.equal((await preflight("http://shop.example")).status, 204);
    assert.equal((await preflight("http://elsewhere.example")).status, 403);

    const limited = await startTestGateway(t, gatewayEnvFor(shop, { MESHWORK_LIVE_GATEWAY_RATE_LIMIT_PER_USER_RPS: "1", MESHWORK_LIVE_GATEWAY_RATE_LIMIT_PER_USER_BURST: "3" }), shop.defer);
    const grpc = createGrpcTransport({ baseUrl: limited.baseUrl });
    const shopper = await signedInShopper(connectClient(IdentityService, grpc));
    const orders = connectClient(OrderService, grpc);
    for (let call = 0; call < 3; call++) await orders.listOrders({}, { headers: { authorization: shopper.authorization } });
    const exhausted = await connectError(orders.listOrders({}, { headers: { authorization: shopper.authorization } }));
    assert.equal(exhausted.code, Code.ResourceExhausted);
    assert.match(exhausted.rawMessage, /retry after \d+ ms/);
    assert.equal(exhausted.metadata.get("retry-after"), "1");
  });
});

async function followToFinal(orders: ServiceClient<typeof OrderService>, orderId: string, headers: Record<string, string>): Promise<Order> {
  let last: Order | undefined;
  for await (const { order } of orders.watchOrder({ orderId }, { headers, timeoutMs: 30_000 })) {
    last = order!;
    if (FINAL.has(last.status)) break;
  }
  assert.ok(last, "WatchOrder sent nothing");
  return last;
}
