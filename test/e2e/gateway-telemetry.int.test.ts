/**
 * The gateway's spans and RED metrics: Connect runs its request gate outside
 * the interceptors, so a call refused there must still be counted and
 * traced, and a server stream's span must last as long as the stream.
 */
import assert from "node:assert/strict";
import { test } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus } from "@meshwork/contracts/health/v1/health";
import { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { OrderService } from "@meshwork/contracts/shop/orders/v1/orders";
import { startGateway } from "@meshwork/gateway";
import { createSilentLogger, createTelemetry } from "@meshwork/platform";
import { InMemorySpanExporter } from "@meshwork/testing";
import { CLOSED_ADDRESS, connectClient, GENEROUS_LIMITS, startEmbeddedBackends } from "./gateway-harness.js";

const SERVER = 1;

test("the gateway traces and counts every public call: served, refused at the gate, and a stream until it ends", { timeout: 60_000 }, async (t) => {
  const backends = await startEmbeddedBackends(t);
  const exporter = new InMemorySpanExporter();
  const telemetry = createTelemetry({ service: "gateway", tracesExporter: exporter, processMetrics: false });
  const gateway = await startGateway(
    {
      GATEWAY_PORT: "0",
      GATEWAY_IDENTITY_ADDR: `127.0.0.1:${backends.identity}`,
      GATEWAY_CATALOG_ADDR: `127.0.0.1:${backends.catalog}`,
      GATEWAY_ORDERS_ADDR: CLOSED_ADDRESS,
      GATEWAY_NOTIFICATIONS_ADDR: CLOSED_ADDRESS,
      GATEWAY_PAYMENTS_ADDR: CLOSED_ADDRESS,
      ...GENEROUS_LIMITS,
      // The stream below is health Watch, which needs a token by default.
      GATEWAY_HEALTH_WATCH: "public",
    },
    { log: createSilentLogger(), telemetry },
  );
  t.onTestFinished(async () => {
    await gateway.shutdown.run("test done");
  });
  const baseUrl = `http://127.0.0.1:${gateway.port}`;
  const transport = createConnectTransport({ baseUrl, httpVersion: "1.1" });

  // Served, continuing a browser's trace.
  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
  await connectClient(CatalogService, transport).listProducts({ pageSize: 1 }, { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
  // Refused by the gate: no token.
  const refused = await connectClient(OrderService, transport)
    .listOrders({})
    .then(
      () => undefined,
      (error: unknown) => ConnectError.from(error),
    );
  assert.equal(refused?.code, Code.Unauthenticated);
  // A stream, read once and then dropped by the client.
  const stop = new AbortController();
  const health = connectClient(Health, createGrpcTransport({ baseUrl }));
  for await (const status of health.watch({ service: "" }, { signal: stop.signal })) {
    assert.equal(status.status, HealthCheckResponse_ServingStatus.SERVING);
    break;
  }
  stop.abort();

  const metrics = await (await fetch(`http://127.0.0.1:${gateway.metricsPort}/metrics`)).text();
  const count = (method: string, code: string): string | undefined =>
    metrics.split("\n").find((line) => line.startsWith("grpc_server_handling_seconds_count{") && line.includes(`grpc_method="${method}"`) && line.includes(`grpc_code="${code}"`));
  assert.match(count("ListProducts", "OK") ?? "(none)", / 1$/);
  assert.match(count("ListOrders", "UNAUTHENTICATED") ?? "(none)", / 1$/, "a call the gate refused is counted with its code");

  // The stream's span ends when the client goes away; wait for it rather than guess.
  const deadline = Date.now() + 10_000;
  let spans = exporter.getFinishedSpans();
  while (!spans.some((span) => span.name === "grpc.health.v1.Health/Watch") && Date.now() < deadline) {
    await telemetry.forceFlush();
    await new Promise((resolve) => setTimeout(resolve, 50));
    spans = exporter.getFinishedSpans();
  }
  const served = spans.find((span) => span.name === "shop.catalog.v1.CatalogService/ListProducts" && span.kind === SERVER);
  assert.equal(served?.spanContext().traceId, traceId, "the browser's traceparent is continued");
  assert.equal(served?.attributes["rpc.system"], "connect_rpc");
  assert.ok(
    spans.some((span) => span.name === "shop.catalog.v1.CatalogService/ListProducts" && span.kind === 2 && span.spanContext().traceId === traceId),
    "the call to catalog is a client span of the same trace",
  );
  const gated = spans.find((span) => span.name === "shop.orders.v1.OrderService/ListOrders");
  assert.equal(gated?.attributes["rpc.grpc.status_code"], Code.Unauthenticated, "the refused call has a span with its code");
  assert.ok(
    spans.some((span) => span.name === "grpc.health.v1.Health/Watch"),
    "the stream's span ended with the stream",
  );
});
