/**
 * The OTLP receiver that stands in for Jaeger in the offline compose run and
 * takes the spans of the observability tests: what it keeps, what it answers
 * at /api/spans, and what it refuses without falling over.
 */
import assert from "node:assert/strict";
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

  test("answers a malformed body 400, another media type 415, an unknown path 404, and keeps serving", async () => {
    const receiver = await startOtlpReceiver();
    try {
      const bad = await fetch(`${receiver.endpoint}/v1/traces`, { method: "POST", headers: { "content-type": "application/json" }, body: "{not json" });
      assert.equal(bad.status, 400);
      assert.match(((await bad.json()) as { error: string }).error, /malformed OTLP\/JSON body/);
      const array = await fetch(`${receiver.endpoint}/v1/traces`, { method: "POST", headers: { "content-type": "application/json" }, body: "[]" });
      assert.equal(array.status, 400);
      assert.equal((await fetch(`${receiver.endpoint}/v1/traces`, { method: "POST", headers: { "content-type": "application/x-protobuf" }, body: "x" })).status, 415);
      assert.equal((await fetch(`${receiver.endpoint}/v1/metrics`, { method: "POST" })).status, 404);
      const health = (await (await fetch(`${receiver.endpoint}/health`)).json()) as { status: string; spans: number };
      assert.deepEqual(health, { status: "ok", spans: 0 });
    } finally {
      await receiver.close();
    }
  });
});
