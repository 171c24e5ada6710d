/**
 * Chaos: one of two catalog instances SIGKILLed while the gateway serves
 * catalog reads from eight loops. Invariant: errors are bounded by the calls
 * in flight on that instance when it died (the gateway retries reads on the
 * other instance, so usually none), then zero; the dead instance is ejected
 * and the mesh status shows it UNREACHABLE.
 *
 * Serial: it measures errors over time under load, so it runs alone.
 */
import assert from "node:assert/strict";
import { test } from "vitest";
import { createClient as createConnectClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { MeshService, ServingStatus } from "@meshwork/contracts/shop/gateway/v1/mesh";
import { catalogReadLoad, ms, percentile, report, shopper } from "./chaos-kit.js";
import { meshBasePort, startTestMesh } from "../e2e/test-mesh.js";

const CONCURRENCY = 8;

test("one of two catalog instances killed under load: errors bounded to its in-flight calls, then zero", { timeout: 240_000 }, async (t) => {
  const mesh = await startTestMesh(t, {
    basePort: meshBasePort(),
    catalogInstances: 2,
    env: {
      IDENTITY_SCRYPT_N: "1024",
      GATEWAY_CATALOG_CACHE_MS: "0",
      GATEWAY_LOG_LEVEL: process.env.CHAOS_DEBUG ? "debug" : "info",
      MESHWORK_LIVE_GATEWAY_RATE_LIMIT_PER_ADDRESS_RPS: "100000",
      MESHWORK_LIVE_GATEWAY_RATE_LIMIT_PER_ADDRESS_BURST: "100000",
    },
  });
  if (!mesh) return;
  try {
    const shop = await shopper(mesh.gatewayPort);
    const meshStatus = createConnectClient(MeshService, createConnectTransport({ baseUrl: `http://127.0.0.1:${mesh.gatewayPort}`, httpVersion: "1.1" }));
    const catalogInstances = async () => (await meshStatus.getMeshStatus({})).services.find((service) => service.name === "catalog")!.instances;

    const stop = new AbortController();
    const load = catalogReadLoad(shop.catalog, "MW-TEA-TIN", CONCURRENCY, stop.signal);
    const loadStarted = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const before = await catalogInstances();
    assert.equal(before.length, 2);
    assert.ok(
      before.every((instance) => instance.status === ServingStatus.SERVING && instance.latencyP50Ms > 0),
      "both instances served reads before the kill",
    );

    const killAt = performance.now() - loadStarted;
    await mesh.kill("catalog-2", "SIGKILL");
    await new Promise((resolve) => setTimeout(resolve, 4000));
    stop.abort();
    const result = await load;

    const afterKill = result.errorTimes.filter((at) => at >= killAt);
    const settled = result.errorTimes.filter((at) => at >= killAt + 1000);
    report("catalog instance killed", {
      "reads (8 loops, 6 s)": `${result.calls} calls, p50 ${ms(percentile(result.latencies, 0.5))}, p99 ${ms(percentile(result.latencies, 0.99))}`,
      "killed catalog-2 at": ms(killAt),
      "failed reads after the kill": `${afterKill.length} (bound ${CONCURRENCY} in flight), last at ${afterKill.length ? ms(Math.max(...afterKill) - killAt) : "-"} after the kill`,
      "failed reads from 1 s after the kill": settled.length,
      "error codes": JSON.stringify(result.errorCodes),
    });
    assert.ok(afterKill.length <= CONCURRENCY, `${afterKill.length} reads failed; at most the ${CONCURRENCY} in flight could`);
    assert.equal(settled.length, 0, `reads still failed more than a second after the kill: ${JSON.stringify(result.errorCodes)}`);
    assert.equal(result.errors, afterKill.length, "no read failed before the kill");

    const after = await catalogInstances();
    const dead = after.find((instance) => instance.address === mesh.addresses["catalog-2"])!;
    const alive = after.find((instance) => instance.address === mesh.addresses.catalog)!;
    assert.equal(dead.status, ServingStatus.UNREACHABLE);
    assert.equal(alive.status, ServingStatus.SERVING);
    assert.equal(alive.breakerState, "closed", "one dead instance does not open the service's breaker");
  } catch (error) {
    process.stderr.write(`mesh output (last 60 lines):\n${mesh.tail(process.env.CHAOS_DEBUG ? 100_000 : 60)}\n`);
    throw error;
  }
});
