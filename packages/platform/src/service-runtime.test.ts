import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { createLogCapture, type LogEntry } from "@meshwork/testing";
import { startEdgeService, type Endpoint, type RuntimeConfig } from "./service-runtime.js";

const config: RuntimeConfig = {
  host: "127.0.0.1",
  port: 0,
  logLevel: "info",
  shutdownGraceMs: 1234,
  consulAddr: "",
  consulToken: "",
  metricsPort: { port: undefined, fallback: 9999 },
  tracesExporter: "none",
  otlpEndpoint: undefined,
  otlpProtocol: "http/protobuf",
  otelServiceName: "",
  spanBatchDelayMs: 100,
  tracesSampler: "parentbased_always_on",
  tracesSamplerArg: 1,
};

/** An endpoint that records what the runtime asks of it. */
function recordingEndpoint() {
  const calls: string[] = [];
  const endpoint: Endpoint = {
    inFlight: "requests",
    async listen(host, port) {
      calls.push(`listen ${host}:${port}`);
      return 4242;
    },
    setServing(serving) {
      calls.push(`serving ${serving}`);
    },
    async drain(graceMs) {
      calls.push(`drain ${graceMs}`);
    },
  };
  return { endpoint, calls };
}

const stepsIn = (entries: readonly LogEntry[]): string[] =>
  entries
    .filter((entry) => entry.msg === "shutdown step done")
    .sort((a, b) => (a.position as number) - (b.position as number))
    .map((entry) => String(entry.step));

describe("startEdgeService", () => {
  test("the endpoint setup returns is listened on and turned SERVING; shutdown turns it NOT_SERVING, drains it, then undoes setup and the runtime", async () => {
    const logs = createLogCapture({ service: "edge", level: "info" });
    const { endpoint, calls } = recordingEndpoint();
    const running = await startEdgeService({
      name: "edge",
      config,
      log: logs.log,
      async setup({ shutdown }) {
        shutdown.add("close clients", async () => void calls.push("clients closed"));
        return { endpoint, logFields: { extra: "field" } };
      },
    });
    assert.equal(running.port, 4242);
    assert.notEqual(running.metricsPort, 9999, "with port 0 the metrics endpoint takes a free port too");
    assert.deepEqual(calls, ["listen 127.0.0.1:0", "serving true"]);
    const serving = logs.entries.find((entry) => entry.msg === "edge serving");
    assert.equal(serving?.port, 4242);
    assert.equal(serving?.extra, "field");

    assert.equal(await running.shutdown.run("test done"), true);
    assert.deepEqual(calls.slice(2), ["serving false", "drain 1234", "clients closed"]);
    // Not registered in discovery (nothing calls it through the mesh), so no deregister step.
    assert.deepEqual(stepsIn(logs.entries), ["health NOT_SERVING", "drain requests", "close clients", "stop discovery", "stop metrics endpoint", "flush traces"]);
  });

  test("when setup fails, what was started is undone and the error comes out", async () => {
    const logs = createLogCapture({ service: "edge", level: "info" });
    await assert.rejects(
      startEdgeService({
        name: "edge",
        config,
        log: logs.log,
        async setup({ shutdown }) {
          shutdown.add("close clients", async () => undefined);
          throw new Error("backend addresses unusable");
        },
      }),
      /backend addresses unusable/,
    );
    assert.deepEqual(stepsIn(logs.entries), ["close clients", "stop discovery", "stop metrics endpoint", "flush traces"]);
  });
});
