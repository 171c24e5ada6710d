/**
 * The OTLP receiver that stands in for Jaeger in the offline compose run and
 * takes the spans of the observability tests: what it keeps, what it answers
 * at /api/spans, and what it refuses without falling over.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { ROOT_CONTEXT, SpanKind, trace, TraceFlags } from "@opentelemetry/api";
import { JsonTraceSerializer, ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import { createTelemetry } from "@meshwork/platform";
import { describe, test } from "vitest";
import { startOtlpReceiver } from "../standins/otlp-receiver/otlp-receiver.js";

const export1 = (service: string, traceId: string, spanIds: string[]) => ({
  resourceSpans: [
    {
      resource: { attributes: [{ key: "service.name", value: { stringValue: service } }] },
      scopeSpans: [{ spans: spanIds.map((spanId) => ({ traceId, spanId, name: `op-${spanId}`, kind: 2, attributes: [{ key: "rpc.method", value: { stringValue: "Get" } }] })) }],
    },
  ],
});

describe("the OTLP receiver", () => {
  test("keeps exported spans and answers them by trace and service", async () => {
    const receiver = await startOtlpReceiver({ maxSpans: 3 });
    try {
      const post = (body: unknown) => fetch(`${receiver.endpoint}/v1/traces`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      const trace = "0af7651916cd43dd8448eb211c80319c";
      assert.equal((await post(export1("gateway", trace, ["b7ad6b7169203331"]))).status, 200);
      assert.equal((await post(export1("orders", trace.toUpperCase(), ["00f067aa0ba902b7"]))).status, 200);
      const spans = (await (await fetch(`${receiver.endpoint}/api/spans?trace_id=${trace}`)).json()) as { service: string; attributes: Record<string, unknown> }[];
      assert.deepEqual(
        spans.map((span) => span.service),
        ["gateway", "orders"],
      );
      assert.equal(spans[0]!.attributes["rpc.method"], "Get");
      assert.equal(((await (await fetch(`${receiver.endpoint}/api/spans?service=orders`)).json()) as unknown[]).length, 1);
      // Beyond maxSpans the oldest go.
      await post(export1("catalog", trace, ["1111111111111111", "2222222222222222"]));
      assert.deepEqual(
        receiver.spans.map((span) => span.service),
        ["orders", "catalog", "catalog"],
      );
    } finally {
      await receiver.close();
    }
  });

  test("reads the services' default OTLP/protobuf as it reads OTLP/JSON: the same spans, ids, kinds and attributes from the SDK's own serializers", async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new TracerProvider({ resource: resourceFromAttributes({ "service.name": "catalog" }), spanProcessors: [new SimpleSpanProcessor({ exporter })] });
    const tracer = provider.getTracer("test");
    const parent = trace.setSpanContext(ROOT_CONTEXT, { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", traceFlags: TraceFlags.SAMPLED, isRemote: true });
    const server = tracer.startSpan("shop.catalog.v1.CatalogService/GetProduct", { kind: SpanKind.SERVER }, parent);
    server.setAttributes({ "rpc.system": "grpc", "rpc.grpc.status_code": 5, "cache.hit": false, ratio: 0.25, "large.int": 2 ** 40, "negative.int": -3, "a.list": ["x", "y"] });
    server.end();
    tracer.startSpan("catalog.products select", { kind: SpanKind.CLIENT, attributes: { "db.system.name": "postgresql" } }, trace.setSpan(parent, server)).end();
    await provider.forceFlush();
    const spans = exporter.getFinishedSpans();
    assert.equal(spans.length, 2);

    const receiver = await startOtlpReceiver();
    try {
      const post = (contentType: string, body: Uint8Array) => fetch(`${receiver.endpoint}/v1/traces`, { method: "POST", headers: { "content-type": contentType }, body });
      assert.equal((await post("application/x-protobuf", ProtobufTraceSerializer.serializeRequest(spans)!)).status, 200);
      const fromProtobuf = receiver.spans.splice(0);
      assert.equal((await post("application/json", JsonTraceSerializer.serializeRequest(spans)!)).status, 200);
      const fromJson = receiver.spans.splice(0);
      assert.deepEqual(fromProtobuf, fromJson);
      assert.deepEqual(fromProtobuf[0], {
        service: "catalog",
        traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
        spanId: server.spanContext().spanId,
        parentSpanId: "00f067aa0ba902b7",
        name: "shop.catalog.v1.CatalogService/GetProduct",
        kind: 2,
        // Arrays are not kept by either reader.
        attributes: { "rpc.system": "grpc", "rpc.grpc.status_code": 5, "cache.hit": false, ratio: 0.25, "large.int": 2 ** 40, "negative.int": -3, "a.list": undefined },
      });
      assert.equal(fromProtobuf[1]?.parentSpanId, server.spanContext().spanId);
      assert.equal(fromProtobuf[1]?.kind, 3);
    } finally {
      await receiver.close();
    }
  });

  test("takes a service's spans over both protocols of its exporter: protobuf by default, JSON when OTEL_EXPORTER_OTLP_PROTOCOL asks", async () => {
    const receiver = await startOtlpReceiver();
    try {
      for (const otlpProtocol of [undefined, "http/json"] as const) {
        const telemetry = createTelemetry({ service: "catalog", tracesExporter: "otlp", otlpEndpoint: receiver.endpoint, processMetrics: false, ...(otlpProtocol ? { otlpProtocol } : {}) });
        const span = telemetry.tracer!.startSpan(`sent as ${otlpProtocol ?? "the default"}`);
        span.end();
        await telemetry.shutdown();
        await receiver.until((spans) => spans.some((received) => received.spanId === span.spanContext().spanId), 5_000);
      }
      assert.deepEqual(
        receiver.spans.map((span) => `${span.service}: ${span.name}`),
        ["catalog: sent as the default", "catalog: sent as http/json"],
      );
    } finally {
      await receiver.close();
    }
    // What the default sends, as the wire says it.
    const types: string[] = [];
    const listener = createServer((request, response) => {
      types.push(String(request.headers["content-type"]));
      request.resume().on("end", () => response.writeHead(200).end());
    });
    await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
    try {
      const telemetry = createTelemetry({ service: "catalog", tracesExporter: "otlp", otlpEndpoint: `http://127.0.0.1:${(listener.address() as AddressInfo).port}`, processMetrics: false });
      telemetry.tracer!.startSpan("one").end();
      await telemetry.shutdown();
      assert.deepEqual(types, ["application/x-protobuf"]);
    } finally {
      listener.closeAllConnections();
      await new Promise((resolve) => listener.close(resolve));
    }
  });

  test("answers a malformed body 400, another media type 415, an unknown path 404, and keeps serving", async () => {
    const receiver = await startOtlpReceiver();
    try {
      const bad = await fetch(`${receiver.endpoint}/v1/traces`, { method: "POST", headers: { "content-type": "application/json" }, body: "{not json" });
      assert.equal(bad.status, 400);
      assert.match(((await bad.json()) as { error: string }).error, /malformed OTLP\/JSON body/);
      const array = await fetch(`${receiver.endpoint}/v1/traces`, { method: "POST", headers: { "content-type": "application/json" }, body: "[]" });
      assert.equal(array.status, 400);
      assert.equal((await fetch(`${receiver.endpoint}/v1/traces`, { method: "POST", headers: { "content-type": "text/plain" }, body: "x" })).status, 415);
      // A field whose length runs past the body; a varint that never ends.
      for (const body of [Uint8Array.of(0x0a, 0x05, 0x01), Uint8Array.of(0x08, 0xff, 0xff)]) {
        const truncated = await fetch(`${receiver.endpoint}/v1/traces`, { method: "POST", headers: { "content-type": "application/x-protobuf" }, body });
        assert.equal(truncated.status, 400);
        assert.match(((await truncated.json()) as { error: string }).error, /malformed OTLP\/protobuf body: a (field|varint) runs past the end of the message/);
      }
      assert.equal((await fetch(`${receiver.endpoint}/v1/metrics`, { method: "POST" })).status, 404);
      const health = (await (await fetch(`${receiver.endpoint}/health`)).json()) as { status: string; spans: number };
      assert.deepEqual(health, { status: "ok", spans: 0 });
    } finally {
      await receiver.close();
    }
  });
});
