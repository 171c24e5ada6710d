/**
 * The gateway's fallback for catalog reads: while catalog is down, a read it
 * answered before is served from the cache past its freshness, marked
 * `x-meshwork-stale: true`; a read it never answered fails UNAVAILABLE.
 * Real catalog service (embedded PGlite) and real gateway, in this process.
 */
import assert from "node:assert/strict";
import { test } from "vitest";
import { startCatalog } from "@meshwork/catalog";
import { Code } from "@connectrpc/connect";
import { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { connectError } from "@meshwork/testing";
import { CLOSED_ADDRESS, connectClient, GENEROUS_LIMITS, startTestGateway, transportsFor } from "./gateway-harness.js";

const CACHE_MS = 100;

test("while catalog is down, the gateway serves the last good catalog answer marked stale, and only that", async (t) => {
  const catalog = await startCatalog({ CATALOG_PORT: "0", CATALOG_DATA_DIR: "memory://", CATALOG_LOG_LEVEL: "warn" });
  let catalogStopped = false;
  t.onTestFinished(async () => {
    if (!catalogStopped) await catalog.shutdown.run("test done");
  });
  const gateway = await startTestGateway(t, {
    ...GENEROUS_LIMITS,
    GATEWAY_IDENTITY_ADDR: CLOSED_ADDRESS,
    GATEWAY_CATALOG_ADDR: `127.0.0.1:${catalog.port}`,
    GATEWAY_ORDERS_ADDR: CLOSED_ADDRESS,
    GATEWAY_PAYMENTS_ADDR: CLOSED_ADDRESS,
    GATEWAY_NOTIFICATIONS_ADDR: CLOSED_ADDRESS,
    GATEWAY_CATALOG_CACHE_MS: String(CACHE_MS),
    GATEWAY_CATALOG_STALE_MS: "60000",
  });
  const getProduct = (productId: string) =>
    fetch(`${gateway.baseUrl}/shop.catalog.v1.CatalogService/GetProduct`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ productId }),
    });

  const fresh = await getProduct("MW-HEADLAMP");
  assert.equal(fresh.status, 200);
  assert.equal(fresh.headers.get("x-meshwork-stale"), null);
  const freshBody = (await fresh.json()) as { product: { id: string; stockAvailable: number } };
  assert.equal(freshBody.product.id, "MW-HEADLAMP");

  await catalog.shutdown.run("catalog goes down");
  catalogStopped = true;
  // Past the cache's freshness, so the read goes to catalog and fails there.
  await new Promise((resolve) => setTimeout(resolve, CACHE_MS + 50));

  const stale = await getProduct("MW-HEADLAMP");
  assert.equal(stale.status, 200);
  assert.equal(stale.headers.get("x-meshwork-stale"), "true");
  assert.deepEqual(await stale.json(), freshBody);

  const neverSeen = await getProduct("MW-TEA-TIN");
  assert.equal(neverSeen.status, 503);
  assert.equal(((await neverSeen.json()) as { code: string }).code, "unavailable");

  // The gRPC path (bytes through) shares the cache: the answer Connect loaded
  // is served stale over gRPC too, as its encoding, and the unseen read fails the same way.
  const grpc = connectClient(CatalogService, transportsFor(gateway.baseUrl)["gRPC over h2c"]);
  let staleHeader: string | null = null;
  const { product } = await grpc.getProduct({ productId: "MW-HEADLAMP" }, { onHeader: (headers) => (staleHeader = headers.get("x-meshwork-stale")) });
  assert.equal(staleHeader, "true");
  assert.equal(product?.id, "MW-HEADLAMP");
  assert.equal(product?.stockAvailable, freshBody.product.stockAvailable);
  assert.equal((await connectError(grpc.getProduct({ productId: "MW-TEA-TIN" }))).code, Code.Unavailable);
});
