/**
 * The same acceptance as observability.int.test.ts, across processes: the
 * local mesh (seven processes, notifications twice, PostgreSQL and RabbitMQ),
 * every process exporting over OTLP/HTTP to a receiver in this test. Nothing
 * is shared but the wire, so one trace id in every service's spans and log
 * lines can only come from the propagation: gRPC metadata, the saga row,
 * the outbox row and the message headers.
 */
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { test } from "vitest";
import { createConnectTransport } from "@connectrpc/connect-node";
import { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { OrderService, OrderStatus } from "@meshwork/contracts/shop/orders/v1/orders";
import { connectClient, signedInShopper } from "./gateway-harness.js";
import { startOtlpReceiver, type ReceivedSpan } from "../../deploy/standins/otlp-receiver/otlp-receiver.js";
import { meshBasePort, startTestMesh } from "./test-mesh.js";

const SERVER = 2;
const PRODUCER = 4;
const CONSUMER = 5;

test("across seven processes, one order placed through the gateway is one trace and one request id in the spans and logs of gateway, orders, catalog, payments and notifications", {
  timeout: 240_000,
}, async (t) => {
  const receiver = await startOtlpReceiver();
  t.onTestFinished(() => receiver.close());
  const debug = Object.fromEntries(["GATEWAY", "IDENTITY", "CATALOG", "ORDERS", "PAYMENTS", "NOTIFICATIONS"].map((prefix) => [`${prefix}_LOG_LEVEL`, "debug"]));
  const mesh = await startTestMesh(t, {
    basePort: meshBasePort(),
    env: {
      IDENTITY_SCRYPT_N: "1024",
      OTEL_TRACES_EXPORTER: "otlp",
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_BSP_SCHEDULE_DELAY: "100",
      ...debug,
    },
  });
  if (!mesh) return;
  const { exchange, lines } = mesh;

  const transport = createConnectTransport({ baseUrl: `http://127.0.0.1:${mesh.gatewayPort}`, httpVersion: "1.1" });
  const shopper = await signedInShopper(connectClient(IdentityService, transport), "mesh-traced");
  const { products } = await connectClient(CatalogService, transport).listProducts({ pageSize: 1 });
  const traceId = randomBytes(16).toString("hex");
  const requestId = `mesh-order-${randomUUID()}`;
  const orders = connectClient(OrderService, transport);
  const { order } = await orders.placeOrder(
    { idempotencyKey: `mesh-traced-${randomUUID()}`, items: [{ productId: products[0]!.id, quantity: 1 }], paymentMethod: { cardToken: "tok_visa" } },
    { headers: { authorization: shopper.authorization, traceparent: `00-${traceId}-${randomBytes(8).toString("hex")}-01`, "x-request-id": requestId } },
  );
  for await (const { order: seen } of orders.watchOrder({ orderId: order!.id }, { headers: { authorization: shopper.authorization }, signal: AbortSignal.timeout(60_000) })) {
    if (seen && seen.status !== OrderStatus.PENDING) {
      assert.equal(seen.status, OrderStatus.CONFIRMED, seen.reason);
      break;
    }
  }

  const has = (spans: readonly ReceivedSpan[], service: string, kind: number, name: string): boolean =>
    spans.some((span) => span.traceId === traceId && span.service === service && span.kind === kind && span.name === name);
  await receiver.until(
    (spans) =>
      has(spans, "gateway", SERVER, "shop.orders.v1.OrderService/PlaceOrder") &&
      has(spans, "orders", SERVER, "shop.orders.v1.OrderService/PlaceOrder") &&
      has(spans, "catalog", SERVER, "shop.catalog.v1.StockService/ReserveStock") &&
      has(spans, "payments", SERVER, "shop.payments.v1.PaymentService/AuthorizePayment") &&
      has(spans, "orders", PRODUCER, `publish ${exchange}`) &&
      spans.filter((span) => span.traceId === traceId && span.service === "notifications" && span.kind === CONSUMER).length >= 2,
    30_000,
  );
  const traced = receiver.spans.filter((span) => span.traceId === traceId);
  assert.ok(
    traced.some((span) => span.service === "orders" && span.name.startsWith("saga ")),
    "the saga's spans are in the order's trace",
  );

  // Log lines, as each process wrote them ("<instance> | {json}").
  const entries = lines.flatMap((line) => {
    const bar = line.indexOf(" | {");
    if (bar < 0) return [];
    try {
      return [{ instance: line.slice(0, bar).trim(), entry: JSON.parse(line.slice(bar + 3)) as Record<string, unknown> }];
    } catch {
      return [];
    }
  });
  for (const service of ["gateway", "orders", "catalog", "payments", "notifications"]) {
    const mine = entries.filter(({ instance, entry }) => (instance === service || instance.startsWith(`${service}-`)) && entry.trace_id === traceId);
    assert.ok(mine.length > 0, `${service} logged lines with the order's trace id`);
    assert.ok(
      mine.every(({ entry }) => entry.request_id === requestId),
      `every such line of ${service} has the request id: ${JSON.stringify(mine.find(({ entry }) => entry.request_id !== requestId))}`,
    );
  }
  console.log(`trace ${traceId}: ${traced.length} spans from ${[...new Set(traced.map((span) => span.service))].join(", ")}`);
});
