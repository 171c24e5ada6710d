import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, type AddressInfo } from "node:net";
import path from "node:path";
import { describe, test } from "vitest";
import { createGrpcHost, createSilentLogger } from "@meshwork/platform";
import { startGateway } from "../services/gateway/src/main.js";
import { APP_SERVICES } from "../deploy/call-graph.js";
import { portSetting, probeTarget } from "./health-probe.js";

const probeFile = path.join(import.meta.dirname, "health-probe.ts");

/** The probe as Docker runs it: a process, judged by its exit code. */
async function probe(args: readonly string[], env: Record<string, string> = {}): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", probeFile, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk));
  const [code] = (await once(child, "close")) as [number | null];
  return { code, output };
}

describe("health probe", () => {
  test("passes against the gateway, whose grpc.health.v1 is served through Connect, and fails once it has shut down", async (t) => {
    const gateway = await startGateway({ GATEWAY_HOST: "127.0.0.1", GATEWAY_PORT: "0", GATEWAY_LOG_LEVEL: "silent" });
    let stopped = false;
    t.onTestFinished(async () => {
      if (!stopped) await gateway.shutdown.run("test over");
    });
    const serving = await probe([`127.0.0.1:${gateway.port}`]);
    assert.equal(serving.code, 0, serving.output);
    assert.match(serving.output, /: SERVING/);
    await gateway.shutdown.run("test over");
    stopped = true;
    const gone = await probe([`127.0.0.1:${gateway.port}`]);
    assert.equal(gone.code, 1, gone.output);
    assert.match(gone.output, /health probe failed: 127\.0\.0\.1:\d+/);
  });

  test("fails with NOT_SERVING while a gRPC server has not turned SERVING", async (t) => {
    const host = createGrpcHost({ name: "probe-test", log: createSilentLogger() });
    const port = await host.listen({ host: "127.0.0.1", port: 0 });
    t.onTestFinished(async () => {
      await host.shutdown(0);
    });
    const starting = await probe([`127.0.0.1:${port}`]);
    assert.equal(starting.code, 1, starting.output);
    assert.match(starting.output, /NOT_SERVING/);
    host.setServing(true);
    const ready = await probe([`127.0.0.1:${port}`]);
    assert.equal(ready.code, 0, ready.output);
    // A status the server refuses comes back as the gRPC error it is (NOT_FOUND for a service it does not know).
    const unknown = await probe([`127.0.0.1:${port}`, "shop.nothing.v1.NoSuchService"]);
    assert.equal(unknown.code, 1, unknown.output);
    assert.match(unknown.output, /health probe failed: 127\.0\.0\.1:\d+: grpc-status 5/);
  });

  test("with MESHWORK_HEALTH_PROBE_WAIT_MS, waits for a server that is not listening, then not SERVING, and passes once it serves", async (t) => {
    const host = createGrpcHost({ name: "probe-wait-test", log: createSilentLogger() });
    t.onTestFinished(async () => {
      await host.shutdown(0);
    });
    // A free port nothing listens on yet.
    const free = createServer();
    await new Promise<void>((resolve) => free.listen(0, "127.0.0.1", resolve));
    const port = (free.address() as AddressInfo).port;
    await new Promise<void>((resolve) => free.close(() => resolve()));
    const waiting = probe([`127.0.0.1:${port}`], { MESHWORK_HEALTH_PROBE_WAIT_MS: "20000" });
    // The probe cannot pass before the server listens and serves, whenever it began asking.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await host.listen({ host: "127.0.0.1", port });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const servingSince = Date.now();
    host.setServing(true);
    const result = await waiting;
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, /: SERVING/);
    assert.ok(Date.now() >= servingSince);
    // And without a server at all, it gives up once the wait is over, naming the last error.
    const started = Date.now();
    const gone = await probe(["127.0.0.1:1"], { MESHWORK_HEALTH_PROBE_WAIT_MS: "600" });
    assert.equal(gone.code, 1, gone.output);
    assert.match(gone.output, /health probe failed: 127\.0\.0\.1:1: .*ECONNREFUSED/);
    assert.ok(Date.now() - started >= 600);
  });

  test("refuses an address that is not HOST:PORT, naming it", async () => {
    const result = await probe(["localhost"]);
    assert.equal(result.code, 1);
    assert.match(result.output, /"localhost" is not HOST:PORT/);
  });

  test("reads the same port variable each service's config reads", async () => {
    for (const service of APP_SERVICES) assert.equal((await portSetting(service)).env, `${service.toUpperCase()}_PORT`);
  });

  test("finds a service's port as the service does: its <SVC>_PORT, else its config default", async () => {
    assert.deepEqual(await probeTarget(["--service", "catalog"], {}), { address: "127.0.0.1:50052", service: "" });
    assert.deepEqual(await probeTarget(["--service", "catalog"], { CATALOG_PORT: "50099" }), { address: "127.0.0.1:50099", service: "" });
    assert.deepEqual(await probeTarget([], { MESHWORK_SERVICE: "gateway" }), { address: "127.0.0.1:8080", service: "" });
    await assert.rejects(probeTarget(["--service", "orders"], { ORDERS_PORT: "http" }), /ORDERS_PORT: "http" is not a port/);
    await assert.rejects(probeTarget(["--service", "../x"], {}), /"\.\.\/x" is not a service name/);
    await assert.rejects(probeTarget([], {}), /set MESHWORK_SERVICE/);
  });
});
