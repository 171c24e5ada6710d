/**
 * When a call runs in its call scope (call-context.ts), and what its log lines
 * and downstream calls carry either way. An int test for one reason: the
 * scope is switched on for the whole process by the first platform client
 * made in it, and only this project gives each file a process-fresh module
 * graph (the unit project shares modules between files), so the first step
 * here really is a process that has made no client yet.
 */
import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Client, credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { CatalogService, GetProductRequestSchema, GetProductResponseSchema } from "@meshwork/contracts/shop/catalog/v1/catalog";
import type { TestScope } from "@meshwork/testing";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace";
import { describe, test } from "vitest";
import { currentCall, REQUEST_ID_HEADER, type CallContext } from "./call-context.js";
import { createClient } from "./client.js";
import { createLogger, type Logger } from "./logger.js";
import { createGrpcHost } from "./server.js";
import { createTelemetry, type Telemetry } from "./telemetry/index.js";

type Line = Record<string, unknown>;

interface Seen {
  /** currentCall() inside the handler. */
  readonly current: CallContext | undefined;
  readonly context: CallContext;
}

/** A catalog whose GetProduct logs one line through its call's logger and one through the service's own. */
async function serve(t: TestScope, telemetry?: Telemetry, handle?: (context: CallContext) => Promise<void>) {
  const lines: Line[] = [];
  const log: Logger = createLogger({ service: "catalog", level: "debug", destination: { write: (line: string) => void lines.push(JSON.parse(line) as Line) } });
  const seen: Seen[] = [];
  const host = createGrpcHost({ name: "catalog", log, ...(telemetry ? { telemetry } : {}) });
  host.add(CatalogService, {
    listProducts: async () => ({ products: [] }),
    getProduct: async (request, context) => {
      await Promise.resolve();
      seen.push({ current: currentCall(), context });
      context.log.info("through the call's logger");
      log.info("through the service's logger");
      await handle?.(context);
      return { product: { id: request.productId, name: "A product" } };
    },
  });
  const port = await host.listen({ host: "127.0.0.1", port: 0 });
  host.setServing(true);
  t.onTestFinished(async () => {
    await host.shutdown(100);
  });
  return { port, lines, seen };
}

/** GetProduct over a bare grpc-js channel: a caller that is not a platform client. */
async function rawGetProduct(t: TestScope, port: number, requestId: string): Promise<string | undefined> {
  const channel = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  t.onTestFinished(() => channel.close());
  const metadata = new Metadata();
  metadata.set(REQUEST_ID_HEADER, requestId);
  const request = create(GetProductRequestSchema, { productId: "A1" });
  return new Promise((resolve, reject) => {
    channel.makeUnaryRequest(
      `/${CatalogService.typeName}/${CatalogService.method.getProduct.name}`,
      (message: typeof request) => Buffer.from(toBinary(GetProductRequestSchema, message)),
      (bytes: Buffer) => fromBinary(GetProductResponseSchema, bytes),
      request,
      metadata,
      { deadline: Date.now() + 5000 },
      (error: ServiceError | null, response) => (error ? reject(error) : resolve(response?.product?.id)),
    );
  });
}

describe("the call scope", () => {
  test("a process that has made no client serves without a call scope, and the call's log lines name its request id all the same; its first client turns the scope on", async (t) => {
    // Tracing off, no client made yet in this process: nothing could read a scope.
    const plain = await serve(t);
    assert.equal(await rawGetProduct(t, plain.port, "req-plain"), "A1");
    assert.equal(plain.seen[0]?.current, undefined, "no call scope is entered");
    const viaCallLog = plain.lines.find((line) => line.msg === "through the call's logger");
    assert.equal(viaCallLog?.request_id, "req-plain", "the call's own logger names the request id outside any scope");
    assert.equal(viaCallLog?.rpc, "CatalogService.GetProduct");

    // Tracing on: the call rides in the span's context, which the handler runs in anyway.
    const exporter = new InMemorySpanExporter();
    const telemetry = createTelemetry({ service: "catalog", tracesExporter: exporter, processMetrics: false });
    t.onTestFinished(() => telemetry.shutdown());
    const traced = await serve(t, telemetry);
    assert.equal(await rawGetProduct(t, traced.port, "req-traced"), "A1");
    assert.equal(traced.seen[0]?.current, traced.seen[0]?.context, "currentCall() is the call, from the span's context");
    await telemetry.forceFlush();
    const span = exporter.getFinishedSpans()[0];
    assert.ok(span, "the server span");
    for (const message of ["through the call's logger", "through the service's logger"]) {
      const line = traced.lines.find((entry) => entry.msg === message);
      assert.equal(line?.request_id, "req-traced", `${message}: request id`);
      assert.equal(line?.trace_id, span.spanContext().traceId, `${message}: trace id`);
    }

    // The first platform client in the process: from now on handlers run in their scope, and
    // a downstream call made inside one inherits the deadline and the request id.
    let downstream: CallContext | undefined;
    const backend = await serve(t, undefined, async (context) => {
      downstream = context;
    });
    const toBackend = createClient(CatalogService, { target: `127.0.0.1:${backend.port}`, defaultTimeoutMs: 60_000 });
    t.onTestFinished(toBackend.close);
    const front = await serve(t, undefined, async () => {
      await toBackend.client.getProduct({ productId: "B2" });
    });
    assert.equal(await rawGetProduct(t, front.port, "req-chain"), "A1");
    assert.equal(front.seen[0]?.current, front.seen[0]?.context, "the handler runs in its call scope");
    assert.equal(downstream?.requestId, "req-chain");
    const left = downstream?.timeoutMs();
    assert.ok(left !== undefined && left <= 5000, `downstream deadline ${left} ms is bounded by the caller's 5 s, not the client's 60 s default`);
    const viaServiceLog = front.lines.find((line) => line.msg === "through the service's logger");
    assert.equal(viaServiceLog?.request_id, "req-chain", "in the scope, the service's own logger names the request id too");
  });
});
