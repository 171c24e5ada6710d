/**
 * The acceptance for tracing and logs: one order placed through the
 * gateway is one trace — its id found in spans of the gateway, orders (its
 * handler, its saga, its outbox relay), catalog, payments and notifications,
 * and in the log lines of each — and one request id is in all their logs.
 *
 * Every service runs for real on its own PostgreSQL database, orders and
 * notifications on a real RabbitMQ exchange and queue named for the test,
 * each service exporting its spans with the real OTLP/HTTP exporter to a
 * receiver in this test. The services share this process, but no span can
 * borrow its trace from the process: server, saga and consumer spans take
 * their parent only from what arrived on the wire (gRPC metadata, the saga
 * row, message headers), and the test checks those parent links too.
 */
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { test } from "vitest";
import { startCatalog } from "@meshwork/catalog";
import { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { OrderService, OrderStatus } from "@meshwork/contracts/shop/orders/v1/orders";
import { startGateway } from "@meshwork/gateway";
import { startIdentity } from "@meshwork/identity";
import { ORDER_EVENT_BINDINGS, startNotifications } from "@meshwork/notifications";
import { startOrders } from "@meshwork/orders";
import { startPayments } from "@meshwork/payments";
import { createLogger, type Logger } from "@meshwork/platform";
import { amqpUrl, connectRabbit, createTestDatabase, deleteTestTopology, uniqueName } from "@meshwork/testing";
import { connectClient, signedInShopper } from "./gateway-harness.js";
import { createConnectTransport } from "@connectrpc/connect-node";
import { startOtlpReceiver, type ReceivedSpan } from "../../deploy/standins/otlp-receiver/otlp-receiver.js";

type LogLine = Record<string, unknown>;

/** A real logger (debug, so per-call lines are written) whose lines the test keeps. */
function capturedLogger(service: string, lines: LogLine[]): Logger {
  return createLogger({ service, level: "debug", destination: { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) } });
}

const SERVER = 2;
const CLIENT = 3;
const PRODUCER = 4;
const CONSUMER = 5;

test("one order placed through the gateway is one trace across gateway, orders, its saga and relay, catalog, payments and notifications, and one request id in all their logs", {
  timeout: 120_000,
}, async (t) => {
  const cleanup: (() => unknown)[] = [];
  t.onTestFinished(async () => {
    for (const step of cleanup.reverse()) await step();
  });
  const urls: Record<string, string> = {};
  for (const name of ["identity", "catalog", "payments", "orders", "notifications"]) {
    const url = await createTestDatabase(t, name);
    if (!url) return;
    urls[name] = url;
  }
  const rabbit = await connectRabbit(t);
  if (!rabbit) return;
  const exchange = uniqueName("observability");
  const queue = uniqueName("observability-notifications");
  cleanup.push(async () => {
    await deleteTestTopology([{ exchange, bindings: ORDER_EVENT_BINDINGS, queue, retryDelaysMs: [200] }], [exchange]);
  });

  const receiver = await startOtlpReceiver();
  cleanup.push(() => receiver.close());
  const tracing = { OTEL_TRACES_EXPORTER: "otlp", OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY: "100" };
  const logs: Record<string, LogLine[]> = { gateway: [], identity: [], catalog: [], payments: [], orders: [], notifications: [] };
  const log = (service: string): Logger => capturedLogger(service, logs[service]!);

  const identity = await startIdentity({ ...tracing, IDENTITY_PORT: "0", IDENTITY_DATABASE_URL: urls.identity, IDENTITY_SCRYPT_N: "1024" }, { log: log("identity") });
  cleanup.push(() => identity.shutdown.run("test done"));
  const catalog = await startCatalog({ ...tracing, CATALOG_PORT: "0", CATALOG_DATABASE_URL: urls.catalog }, { log: log("catalog") });
  cleanup.push(() => catalog.shutdown.run("test done"));
  const payments = await startPayments({ ...tracing, PAYMENTS_PORT: "0", PAYMENTS_DATABASE_URL: urls.payments }, { log: log("payments") });
  cleanup.push(() => payments.shutdown.run("test done"));
  const notifications = await startNotifications(
    {
      ...tracing,
      NOTIFICATIONS_PORT: "0",
      NOTIFICATIONS_DATABASE_URL: urls.notifications,
      NOTIFICATIONS_AMQP_URL: amqpUrl(),
      NOTIFICATIONS_EVENTS_EXCHANGE: exchange,
      NOTIFICATIONS_QUEUE: queue,
      NOTIFICATIONS_RETRY_DELAYS_MS: "200",
      NOTIFICATIONS_IDENTITY_ADDR: `127.0.0.1:${identity.port}`,
    },
    { log: log("notifications") },
  );
  cleanup.push(() => notifications.shutdown.run("test done"));
  const orders = await startOrders(
    {
      ...tracing,
      ORDERS_PORT: "0",
      ORDERS_DATABASE_URL: urls.orders,
      ORDERS_CATALOG_ADDR: `127.0.0.1:${catalog.port}`,
      ORDERS_PAYMENTS_ADDR: `127.0.0.1:${payments.port}`,
      ORDERS_IDENTITY_ADDR: `127.0.0.1:${identity.port}`,
      ORDERS_AMQP_URL: amqpUrl(),
      ORDERS_EVENTS_EXCHANGE: exchange,
    },
    { log: log("orders") },
  );
  cleanup.push(() => orders.shutdown.run("test done"));
  const gateway = await startGateway(
    {
      ...tracing,
      GATEWAY_PORT: "0",
      GATEWAY_IDENTITY_ADDR: `127.0.0.1:${identity.port}`,
      GATEWAY_CATALOG_ADDR: `127.0.0.1:${catalog.port}`,
      GATEWAY_ORDERS_ADDR: `127.0.0.1:${orders.port}`,
      GATEWAY_PAYMENTS_ADDR: `127.0.0.1:${payments.port}`,
      GATEWAY_NOTIFICATIONS_ADDR: `127.0.0.1:${notifications.port}`,
    },
    { log: log("gateway") },
  );
  cleanup.push(() => gateway.shutdown.run("test done"));

  const transport = createConnectTransport({ baseUrl: `http://127.0.0.1:${gateway.port}`, httpVersion: "1.1" });
  const shopper = await signedInShopper(connectClient(IdentityService, transport), "traced");
  const { products } = await connectClient(CatalogService, transport).listProducts({ pageSize: 1 });
  const productId = products[0]!.id;

  // The browser starts the trace (as a traced web client does) and names its request.
  const traceId = randomBytes(16).toString("hex");
  const browserSpanId = randomBytes(8).toString("hex");
  const requestId = `order-${randomUUID()}`;
  const ordersApi = connectClient(OrderService, transport);
  const { order } = await ordersApi.placeOrder(
    { idempotencyKey: `traced-${randomUUID()}`, items: [{ productId, quantity: 1 }], paymentMethod: { cardToken: "tok_visa" } },
    { headers: { authorization: shopper.authorization, traceparent: `00-${traceId}-${browserSpanId}-01`, "x-request-id": requestId } },
  );
  for await (const { order: seen } of ordersApi.watchOrder({ orderId: order!.id }, { headers: { authorization: shopper.authorization }, signal: AbortSignal.timeout(30_000) })) {
    if (seen && seen.status !== OrderStatus.PENDING) {
      assert.equal(seen.status, OrderStatus.CONFIRMED, seen.reason);
      break;
    }
  }

  const inTrace = (spans: readonly ReceivedSpan[]): ReceivedSpan[] => spans.filter((span) => span.traceId === traceId);
  const find = (spans: readonly ReceivedSpan[], service: string, kind: number, name: string): ReceivedSpan[] =>
    inTrace(spans).filter((span) => span.service === service && span.kind === kind && span.name === name);
  const expected: [string, number, string][] = [
    ["gateway", SERVER, "shop.orders.v1.OrderService/PlaceOrder"],
    ["gateway", CLIENT, "shop.orders.v1.OrderService/PlaceOrder"],
    ["orders", SERVER, "shop.orders.v1.OrderService/PlaceOrder"],
    ["orders", CLIENT, "shop.catalog.v1.StockService/ReserveStock"],
    ["catalog", SERVER, "shop.catalog.v1.StockService/ReserveStock"],
    ["orders", CLIENT, "shop.payments.v1.PaymentService/AuthorizePayment"],
    ["payments", SERVER, "shop.payments.v1.PaymentService/AuthorizePayment"],
    ["orders", PRODUCER, `publish ${exchange}`],
    ["notifications", CONSUMER, `process ${queue}`],
  ];
  // Both events of the order (placed, confirmed) reach notifications inside the trace.
  // Each service exports on its own schedule: wait for both events' consumer spans and the publish spans they hang under.
  const consumedUnderPublish = (spans: readonly ReceivedSpan[]): boolean => {
    const consumed = find(spans, "notifications", CONSUMER, `process ${queue}`);
    const published = new Set(find(spans, "orders", PRODUCER, `publish ${exchange}`).map((span) => span.spanId));
    return consumed.length >= 2 && consumed.every((span) => published.has(span.parentSpanId));
  };
  await receiver.until((spans) => expected.every(([service, kind, name]) => find(spans, service, kind, name).length > 0) && consumedUnderPublish(spans), 20_000);
  const spans = inTrace(receiver.spans);
  const one = (service: string, kind: number, name: string): ReceivedSpan => find(receiver.spans, service, kind, name)[0]!;

  // Linked hop by hop, each parent taken from the wire.
  assert.equal(one("gateway", SERVER, expected[0]![2]).parentSpanId, browserSpanId, "the gateway continues the browser's traceparent");
  assert.equal(one("orders", SERVER, expected[2]![2]).parentSpanId, one("gateway", CLIENT, expected[1]![2]).spanId, "orders continues the gateway's call");
  const ordersClientIds = new Set(spans.filter((span) => span.service === "orders" && span.kind === CLIENT).map((span) => span.spanId));
  assert.ok(ordersClientIds.has(one("catalog", SERVER, expected[4]![2]).parentSpanId), "catalog's span hangs under an orders client span");
  assert.ok(ordersClientIds.has(one("payments", SERVER, expected[6]![2]).parentSpanId), "payments' span hangs under an orders client span");
  const sagaSpans = spans.filter((span) => span.service === "orders" && span.name.startsWith("saga "));
  assert.ok(sagaSpans.length > 0, "the saga, run after PlaceOrder returned, is in the order's trace");
  const publishIds = new Set(spans.filter((span) => span.kind === PRODUCER).map((span) => span.spanId));
  for (const consumed of find(receiver.spans, "notifications", CONSUMER, `process ${queue}`)) {
    assert.ok(publishIds.has(consumed.parentSpanId), "each consumer span continues the relay's publish span from the message headers");
  }
  assert.ok(
    spans.some((span) => span.service === "orders" && span.attributes["db.system.name"] === "postgresql"),
    "orders' queries are spans of the trace",
  );
  assert.ok(
    spans.some((span) => span.service === "notifications" && span.attributes["db.system.name"] === "postgresql"),
    "notifications' queries are spans of the trace",
  );

  // The logs: the same trace id and request id at the gateway and in every service the order touched.
  for (const service of ["gateway", "orders", "catalog", "payments", "notifications"]) {
    const lines = logs[service]!.filter((line) => line.trace_id === traceId);
    assert.ok(lines.length > 0, `${service} wrote log lines with the order's trace id`);
    assert.ok(
      lines.every((line) => line.request_id === requestId && typeof line.span_id === "string"),
      `${service}'s lines in the trace carry the request id and a span id: ${JSON.stringify(lines.find((line) => line.request_id !== requestId))}`,
    );
  }
  // Orders' outbox and notifications' queue (read from RabbitMQ) on their /metrics: drained after the flow.
  const metricsOf = async (port: number): Promise<string> => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  assert.match(await metricsOf(orders.metricsPort), /^meshwork_outbox_backlog\{service="orders"\} 0$/m);
  assert.match(await metricsOf(orders.metricsPort), /^meshwork_outbox_published\{service="orders"\} [1-9]/m);
  const notificationsMetrics = await metricsOf(notifications.metricsPort);
  const depth = notificationsMetrics.split("\n").find((line) => line.startsWith("meshwork_queue_depth{") && line.includes(`queue="${queue}"`));
  assert.match(depth ?? "(none)", / 0$/, "notifications' queue depth, read from RabbitMQ, is 0 once both events are handled");
  assert.match(notificationsMetrics, /^meshwork_queue_consume_lag_seconds_count\{service="notifications",queue="[^"]+"\} [2-9]/m);
  console.log(`trace ${traceId}: ${spans.length} spans from ${[...new Set(spans.map((span) => span.service))].join(", ")}`);
});
