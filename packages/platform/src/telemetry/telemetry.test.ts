import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { context, ROOT_CONTEXT, trace, TraceFlags } from "@opentelemetry/api";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace";
import { currentCall } from "../call-context.js";
import { createClient } from "../client.js";
import { notFound } from "../rpc-errors.js";
import { createLogger } from "../logger.js";
import { createMemoryBroker } from "../messaging/memory-broker.js";
import { createMemoryTaskQueue } from "../queue/memory.js";
import { createGrpcHost } from "../server.js";
import { createSampler, createTelemetry, instrumentHandler, registerQueueMetrics, startMetricsServer, type Telemetry } from "./index.js";

const SERVER = 1; // SpanKind.SERVER
const CLIENT = 2; // SpanKind.CLIENT

/** A catalog served by the platform host with `telemetry`, a client of it with `clientTelemetry`, and what the server saw. */
async function serve(t: TestScope, telemetry: Telemetry | undefined, clientTelemetry: Telemetry | undefined) {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ service: "catalog", level: "debug", destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } });
  const seen: { traceparent: unknown[] }[] = [];
  const host = createGrpcHost({ name: "catalog", log, ...(telemetry ? { telemetry } : {}) });
  host.add(CatalogService, {
    listProducts: async () => {
      throw notFound("no such page");
    },
    getProduct: async (request, context) => {
      seen.push({ traceparent: context.metadata.get("traceparent") });
      context.log.info("reading a product");
      return { product: { id: request.productId, name: "A product" } };
    },
  });
  const port = await host.listen({ host: "127.0.0.1", port: 0 });
  host.setServing(true);
  t.onTestFinished(async () => {
    await host.shutdown(100);
  });
  const client = createClient(CatalogService, { target: `127.0.0.1:${port}`, ...(clientTelemetry ? { telemetry: clientTelemetry.forClient("catalog") } : {}) });
  t.onTestFinished(client.close);
  return { client: client.client, seen, lines };
}

async function scrape(t: TestScope, telemetry: Telemetry): Promise<string> {
  const server = await startMetricsServer({ registry: telemetry.metrics.registry, host: "127.0.0.1", port: 0, log: createLogger({ service: "test", level: "silent" }) });
  t.onTestFinished(() => server.close());
  const response = await fetch(`http://127.0.0.1:${server.port}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return response.text();
}

/** The value of the sample `name` whose labels include `labels` (any order), or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((pair) => [pair[1], pair[2]]));
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) return Number(match[3]);
  }
  return undefined;
}

describe("telemetry of the platform host and client", () => {
  test("with tracing on, a call is one trace: the client span's traceparent reaches the server, whose span is its child, and the handler's log line carries both ids and the request id", async (t) => {
    const exporter = new InMemorySpanExporter();
    const server = createTelemetry({ service: "catalog", tracesExporter: exporter, processMetrics: false });
    const caller = createTelemetry({ service: "orders", tracesExporter: exporter, processMetrics: false });
    const { client, seen, lines } = await serve(t, server, caller);

    await client.getProduct({ productId: "A1" }, { headers: { "x-request-id": "req-1" } });
    await Promise.all([server.forceFlush(), caller.forceFlush()]);

    const spans = exporter.getFinishedSpans();
    const clientSpan = spans.find((span) => span.kind === CLIENT);
    const serverSpan = spans.find((span) => span.kind === SERVER);
    assert.ok(clientSpan && serverSpan, `a client and a server span: ${spans.map((span) => span.name).join(", ")}`);
    assert.equal(clientSpan.name, "shop.catalog.v1.CatalogService/GetProduct");
    assert.equal(clientSpan.resource.attributes["service.name"], "orders");
    assert.equal(serverSpan.resource.attributes["service.name"], "catalog");
    assert.equal(serverSpan.spanContext().traceId, clientSpan.spanContext().traceId);
    assert.equal(serverSpan.parentSpanContext?.spanId, clientSpan.spanContext().spanId);
    assert.deepEqual(serverSpan.attributes, { "rpc.system": "grpc", "rpc.service": "shop.catalog.v1.CatalogService", "rpc.method": "GetProduct", "rpc.grpc.status_code": 0 });
    assert.equal(seen[0]!.traceparent[0], `00-${clientSpan.spanContext().traceId}-${clientSpan.spanContext().spanId}-01`);
    const line = lines.find((entry) => entry.msg === "reading a product");
    assert.equal(line?.trace_id, serverSpan.spanContext().traceId);
    assert.equal(line?.span_id, serverSpan.spanContext().spanId);
    assert.equal(line?.request_id, "req-1");
  });

  test("sampling: a parent-based ratio follows the caller's decision both ways and applies its ratio only to traces the service starts", async (t) => {
    const exporter = new InMemorySpanExporter();
    // The server records none of the traces it starts itself.
    const server = createTelemetry({ service: "catalog", tracesExporter: exporter, processMetrics: false, sampler: "parentbased_traceidratio", samplerRatio: 0 });
    const sampling = createTelemetry({ service: "orders", tracesExporter: exporter, processMetrics: false });
    const notSampling = createTelemetry({ service: "gateway", tracesExporter: exporter, processMetrics: false, sampler: "always_off" });
    const flush = () => Promise.all([server.forceFlush(), sampling.forceFlush(), notSampling.forceFlush()]);
    const served = () => exporter.getFinishedSpans().filter((span) => span.kind === SERVER);

    const sampled = await serve(t, server, sampling);
    await sampled.client.getProduct({ productId: "A1" });
    await flush();
    assert.equal(served().length, 1, "a caller that sampled the trace: the server records its part");
    assert.match(String(sampled.seen[0]!.traceparent[0]), /-01$/);

    exporter.reset();
    const unsampled = await serve(t, server, notSampling);
    await unsampled.client.getProduct({ productId: "A1" });
    await flush();
    assert.match(String(unsampled.seen[0]!.traceparent[0]), /-00$/, "the caller passes its decision on");
    assert.deepEqual(exporter.getFinishedSpans(), [], "a caller that did not sample it: neither side records anything");

    exporter.reset();
    const untraced = await serve(t, server, undefined);
    await untraced.client.getProduct({ productId: "A1" });
    await flush();
    assert.deepEqual(untraced.seen[0]!.traceparent, []);
    assert.deepEqual(served(), [], "a trace the server starts: its ratio of 0 records none");
  });

  test("sampling: a ratio records about that share of new traces; traceidratio ignores the caller; always_off records nothing", async () => {
    const recorded = (sampler: Parameters<typeof createSampler>[0], ratio: number, parent = ROOT_CONTEXT, count = 2000) => {
      const telemetry = createTelemetry({ service: "catalog", tracesExporter: new InMemorySpanExporter(), processMetrics: false, sampler, samplerRatio: ratio });
      let n = 0;
      for (let index = 0; index < count; index++) if (telemetry.tracer!.startSpan("work", {}, parent).isRecording()) n += 1;
      return n;
    };
    // Binomial, 2000 tries at 0.5: a standard deviation of 22, so 800-1200 is a bound of 9 of them.
    const half = recorded("parentbased_traceidratio", 0.5);
    assert.ok(half > 800 && half < 1200, `half of 2000 new traces, not ${half}`);
    const sampledParent = trace.setSpanContext(ROOT_CONTEXT, { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", traceFlags: TraceFlags.SAMPLED, isRemote: true });
    assert.equal(recorded("parentbased_traceidratio", 0, sampledParent, 50), 50, "parent-based: a sampled caller's trace is recorded whatever the ratio");
    assert.equal(recorded("traceidratio", 0, sampledParent, 50), 0, "traceidratio decides by itself");
    assert.equal(recorded("always_off", 1, sampledParent, 50), 0);
    assert.equal(recorded("always_on", 0, ROOT_CONTEXT, 50), 50);
    assert.equal(context.active(), ROOT_CONTEXT, "nothing was left active");
    assert.throws(() => createSampler("traceidratio", 2), /a sampling ratio is from 0 to 1, not 2/);
  });

  test("a span batch the collector refuses is logged on the service's logger (component opentelemetry), not lost in silence", async (t) => {
    const collector = createServer((request, response) => {
      request.resume().on("end", () => response.writeHead(400, { "content-type": "application/json" }).end("{}"));
    });
    await new Promise<void>((resolve) => collector.listen(0, "127.0.0.1", resolve));
    t.onTestFinished(() => {
      collector.closeAllConnections();
      collector.close();
    });
    let logged: (entry: Record<string, unknown>) => void = () => undefined;
    const line = new Promise<Record<string, unknown>>((resolve) => (logged = resolve));
    const log = createLogger({
      service: "catalog",
      destination: {
        write: (text: string) => {
          const entry = JSON.parse(text) as Record<string, unknown>;
          if (entry.component === "opentelemetry") logged(entry);
        },
      },
    });
    const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
    const telemetry = createTelemetry({ service: "catalog", tracesExporter: "otlp", otlpEndpoint: endpoint, scheduleDelayMs: 20, processMetrics: false, log });
    telemetry.tracer!.startSpan("refused").end();
    // The batch goes out on the processor's timer; its failure reaches OpenTelemetry's diag logger.
    const entry = await Promise.race([line, new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no OpenTelemetry line was logged within 10 s")), 10_000))]);
    assert.equal(entry.level, "error");
    assert.equal(entry.service, "catalog");
    assert.equal(entry.msg, "OpenTelemetry: Bad Request");
    assert.equal((entry.err as { code?: unknown } | undefined)?.code, 400, "the collector's status is on the line");
    await telemetry.shutdown();
  });

  test("a caller's error is not the server's fault: NOT_FOUND leaves the server span unset and marks the client span failed", async (t) => {
    const exporter = new InMemorySpanExporter();
    const telemetry = createTelemetry({ service: "catalog", tracesExporter: exporter, processMetrics: false });
    const { client } = await serve(t, telemetry, telemetry);
    await assert.rejects(client.listProducts({}));
    await telemetry.forceFlush();
    const spans = exporter.getFinishedSpans();
    assert.equal(spans.find((span) => span.kind === SERVER)?.status.code, 0, "UNSET");
    assert.equal(spans.find((span) => span.kind === CLIENT)?.status.code, 2, "ERROR");
  });

  test("with tracing off, no span is made and nothing is added to the call: no traceparent reaches the server", async (t) => {
    const telemetry = createTelemetry({ service: "catalog", tracesExporter: "none", processMetrics: false });
    assert.equal(telemetry.tracer, undefined);
    const { client, seen, lines } = await serve(t, telemetry, telemetry);
    await client.getProduct({ productId: "A1" }, { headers: { "x-request-id": "req-2" } });
    assert.deepEqual(seen[0]!.traceparent, []);
    const line = lines.find((entry) => entry.msg === "reading a product");
    assert.equal(line?.trace_id, undefined);
    assert.equal(line?.request_id, "req-2", "the request id is on the line all the same");
  });

  test("RED metrics per method and code on both sides, and the breaker state gauge, in Prometheus text", async (t) => {
    const telemetry = createTelemetry({ service: "catalog", tracesExporter: "none" });
    const { client } = await serve(t, telemetry, telemetry);
    await client.getProduct({ productId: "A1" });
    await client.getProduct({ productId: "A2" });
    await assert.rejects(client.listProducts({}));
    telemetry.forClient("catalog").setBreakerState("open");

    const text = await scrape(t, telemetry);
    assert.equal(sample(text, "grpc_server_handling_seconds_count", { grpc_service: "shop.catalog.v1.CatalogService", grpc_method: "GetProduct", grpc_code: "OK", service: "catalog" }), 2);
    assert.equal(sample(text, "grpc_server_handling_seconds_count", { grpc_service: "shop.catalog.v1.CatalogService", grpc_method: "ListProducts", grpc_code: "NOT_FOUND", service: "catalog" }), 1);
    assert.equal(
      sample(text, "grpc_client_handling_seconds_count", { downstream: "catalog", grpc_service: "shop.catalog.v1.CatalogService", grpc_method: "GetProduct", grpc_code: "OK", service: "catalog" }),
      2,
    );
    assert.equal(sample(text, "meshwork_client_circuit_breaker_state", { downstream: "catalog", state: "open", service: "catalog" }), 1);
    assert.equal(sample(text, "meshwork_client_circuit_breaker_state", { downstream: "catalog", state: "closed", service: "catalog" }), 0);
    assert.ok(sample(text, "process_cpu_user_seconds_total", { service: "catalog" })! > 0, "process metrics");
    assert.doesNotMatch(text, /A1|A2/, "no ids in any label");
  });

  test("the breaker-state gauge follows the client's own breaker: closed at first, open once the downstream keeps failing", async (t) => {
    const telemetry = createTelemetry({ service: "gateway", tracesExporter: "none", processMetrics: false });
    const { DEFAULT_RESILIENCE } = await import("../resilience/settings.js");
    const resilience = { ...DEFAULT_RESILIENCE, retry: { ...DEFAULT_RESILIENCE.retry, maxAttempts: 1 }, breaker: { ...DEFAULT_RESILIENCE.breaker, consecutiveFailures: 2 } };
    // Nothing listens on port 1: every call fails at once with UNAVAILABLE.
    const client = createClient(CatalogService, { target: "127.0.0.1:1", name: "catalog", resilience, telemetry: telemetry.forClient("catalog") });
    t.onTestFinished(client.close);
    const state = async (): Promise<Record<string, number | undefined>> => {
      const text = await scrape(t, telemetry);
      return Object.fromEntries(["closed", "open", "half-open"].map((name) => [name, sample(text, "meshwork_client_circuit_breaker_state", { downstream: "catalog", state: name })]));
    };
    assert.deepEqual(await state(), { closed: 1, open: 0, "half-open": 0 });
    for (let call = 0; call < 3; call++) await assert.rejects(client.client.getProduct({ productId: "A1" }, { timeoutMs: 2000 }));
    assert.deepEqual(await state(), { closed: 0, open: 1, "half-open": 0 });
  });

  test("queue depth is read at scrape time, and a consumed message's age is its lag", async (t) => {
    const telemetry = createTelemetry({ service: "notifications", tracesExporter: "none", processMetrics: false });
    const broker = createMemoryBroker();
    const queue = createMemoryTaskQueue({ broker, log: createLogger({ service: "test", level: "silent" }) });
    t.onTestFinished(() => queue.close());
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    t.onTestFinished(() => release());
    let handled = 0;
    let firstTaken!: () => void;
    const taken = new Promise<void>((resolve) => (firstTaken = resolve));
    const consumer = queue.consume<string>({
      exchange: "shop.test.v1",
      bindings: ["#"],
      queue: "test.work",
      retryDelaysMs: [10],
      prefetch: 1,
      parse: (body) => Buffer.from(body).toString(),
      handle: instrumentHandler(telemetry, "test.work", async () => {
        handled++;
        firstTaken();
        await held;
      }),
    });
    await consumer.ready();
    registerQueueMetrics(telemetry.metrics, queue, ["test.work"]);
    const message = (id: string) => ({
      messageId: id,
      exchange: "shop.test.v1",
      routingKey: "a",
      type: "t",
      contentType: "text/plain",
      body: Buffer.from(id),
      headers: {},
      timestamp: new Date(Date.now() - 2000),
    });
    await broker.publisher.publish([message("m1"), message("m2"), message("m3")]);
    // One is in the handler (prefetch 1, held there), two wait.
    await taken;
    assert.equal(handled, 1);
    const text = await scrape(t, telemetry);
    assert.equal(sample(text, "meshwork_queue_depth", { queue: "test.work", service: "notifications" }), 2);
    assert.equal(sample(text, "meshwork_queue_consume_lag_seconds_count", { queue: "test.work", service: "notifications" }), 1);
    // The message was 2 s old when taken: counted in the 5 s bucket, not the 1 s one.
    assert.equal(sample(text, "meshwork_queue_consume_lag_seconds_bucket", { le: "1", queue: "test.work", service: "notifications" }), 0);
    assert.equal(sample(text, "meshwork_queue_consume_lag_seconds_bucket", { le: "5", queue: "test.work", service: "notifications" }), 1);
    release();
  });

  test("the request id of work done outside a gRPC call (a saga step, a message) is on that work's log lines and no others", async () => {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger({ service: "orders", destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } });
    const { runWithRequestId } = await import("./log-context.js");
    await runWithRequestId("saga-req", async () => {
      await Promise.resolve();
      log.info("step done");
    });
    log.info("outside");
    assert.equal(lines[0]!.request_id, "saga-req");
    assert.equal(lines[1]!.request_id, undefined);
    assert.equal(currentCall(), undefined);
  });
});
