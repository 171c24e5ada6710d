/**
 * The issue's acceptance for metrics: a real Prometheus scrapes a running
 * gateway and the catalog behind it, and a query through its HTTP API for
 * the gateway's request rate returns a series. Embedded backends (PGlite):
 * what is tested here is the metrics path, not the databases.
 */
import assert from "node:assert/strict";
import { test } from "vitest";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Code, ConnectError } from "@connectrpc/connect";
import { startCatalog } from "@meshwork/catalog";
import { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { startGateway } from "@meshwork/gateway";
import { startIdentity } from "@meshwork/identity";
import { createSilentLogger } from "@meshwork/platform";
import { startPrometheus } from "@meshwork/testing";
import { connectClient, GENEROUS_LIMITS } from "./gateway-harness.js";

test("a real Prometheus scrapes the gateway and catalog, and the gateway's request rate comes back per method and code", { timeout: 90_000 }, async (t) => {
  const quiet = createSilentLogger();
  const identity = await startIdentity({ IDENTITY_PORT: "0", IDENTITY_DATA_DIR: "memory://", IDENTITY_SCRYPT_N: "1024" }, { log: quiet });
  t.onTestFinished(async () => {
    await identity.shutdown.run("test done");
  });
  const catalog = await startCatalog({ CATALOG_PORT: "0", CATALOG_DATA_DIR: "memory://" }, { log: quiet });
  t.onTestFinished(async () => {
    await catalog.shutdown.run("test done");
  });
  // The cache off: every read reaches catalog, so its RED metrics move too.
  const gateway = await startGateway(
    { GATEWAY_PORT: "0", GATEWAY_IDENTITY_ADDR: `127.0.0.1:${identity.port}`, GATEWAY_CATALOG_ADDR: `127.0.0.1:${catalog.port}`, GATEWAY_CATALOG_CACHE_MS: "0", ...GENEROUS_LIMITS },
    { log: quiet },
  );
  t.onTestFinished(async () => {
    await gateway.shutdown.run("test done");
  });
  assert.notEqual(gateway.metricsPort, 9464, "with GATEWAY_PORT=0 the metrics port is a free one, not the fixed default");

  const prometheus = await startPrometheus(t, [
    { job: "gateway", target: `127.0.0.1:${gateway.metricsPort}` },
    { job: "catalog", target: `127.0.0.1:${catalog.metricsPort}` },
  ]);
  if (!prometheus) return;

  // Traffic until Prometheus has seen it: reads that succeed and ones that are NOT_FOUND.
  const api = connectClient(CatalogService, createConnectTransport({ baseUrl: `http://127.0.0.1:${gateway.port}`, httpVersion: "1.1" }));
  const { products } = await api.listProducts({ pageSize: 3 });
  const traffic = new AbortController();
  const load = (async () => {
    while (!traffic.signal.aborted) {
      await api.getProduct({ productId: products[0]!.id });
      await api.getProduct({ productId: "no-such-product" }).then(
        () => assert.fail("a missing product was found"),
        (error: unknown) => assert.equal(ConnectError.from(error).code, Code.NotFound),
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  try {
    await checkSeries();
  } finally {
    traffic.abort();
    await load;
  }

  async function checkSeries(): Promise<void> {
    if (!prometheus) return;
    const rate = 'sum by (grpc_method, grpc_code) (rate(grpc_server_handling_seconds_count{job="gateway", grpc_service="shop.catalog.v1.CatalogService"}[5s]))';
    const series = await prometheus.until(
      rate,
      (results) => results.some((result) => result.metric.grpc_code === "NOT_FOUND") && results.some((result) => result.metric.grpc_code === "OK" && Number(result.value[1]) > 0),
      30_000,
    );
    const ok = series.find((result) => result.metric.grpc_method === "GetProduct" && result.metric.grpc_code === "OK");
    assert.ok(ok && Number(ok.value[1]) > 0, `the gateway's GetProduct OK rate is above 0: ${JSON.stringify(series)}`);

    // Behind it: catalog's own RED series, the gateway's client-side view of catalog, and process metrics.
    const backend = await prometheus.until('sum by (grpc_code) (rate(grpc_server_handling_seconds_count{job="catalog", grpc_method="GetProduct"}[5s]))', (results) => results.length >= 2, 15_000);
    assert.deepEqual(backend.map((result) => result.metric.grpc_code).sort(), ["NOT_FOUND", "OK"]);
    const client = await prometheus.query('grpc_client_handling_seconds_count{job="gateway", downstream="catalog", grpc_method="GetProduct"}');
    assert.ok(client.length > 0, "the gateway reports its calls to catalog per downstream");
    const up = await prometheus.query('process_resident_memory_bytes{job="catalog", service="catalog"}');
    assert.ok(up.length === 1 && Number(up[0]!.value[1]) > 0, "process metrics are in the service's registry");
    console.log(`gateway GetProduct rate: ${series.map((result) => `${result.metric.grpc_method}/${result.metric.grpc_code}=${Number(result.value[1]).toFixed(1)}/s`).join(", ")}`);
  }
});
