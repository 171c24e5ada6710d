import assert from "node:assert/strict";
import { test } from "vitest";
import type { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { Code, RpcError, type ServiceClient } from "@meshwork/platform";
import { createGrpcProductCheck } from "./product-check.grpc.js";

/** A catalog that knows `known` (or is down) and records what it was asked. */
function fakeCatalog(known: Set<string>) {
  const asked: string[] = [];
  let down = false;
  const client = {
    getProduct: async ({ productId }: { productId: string }) => {
      asked.push(productId);
      if (down) throw new RpcError(Code.UNAVAILABLE, "catalog down");
      if (!known.has(productId)) throw new RpcError(Code.NOT_FOUND, `product ${productId} does not exist`);
      return { product: { id: productId } };
    },
  } as unknown as ServiceClient<typeof CatalogService>;
  return { client, asked, goDown: () => (down = true) };
}

test("a confirmed product is not asked about again within knownForMs, and is after it", async () => {
  const catalog = fakeCatalog(new Set(["MW-TEA-TIN"]));
  let now = 1000;
  const check = createGrpcProductCheck(catalog.client, { timeoutMs: 100, knownForMs: 5000, now: () => now });
  assert.deepEqual(await check.unknownProducts(["MW-TEA-TIN"]), new Set());
  now += 4999;
  assert.deepEqual(await check.unknownProducts(["MW-TEA-TIN"]), new Set());
  assert.deepEqual(catalog.asked, ["MW-TEA-TIN"]);
  now += 1;
  assert.deepEqual(await check.unknownProducts(["MW-TEA-TIN"]), new Set());
  assert.deepEqual(catalog.asked, ["MW-TEA-TIN", "MW-TEA-TIN"]);
});

test("an unknown product is asked about every time, so one added to the catalog is accepted at once", async () => {
  const known = new Set<string>();
  const catalog = fakeCatalog(known);
  const check = createGrpcProductCheck(catalog.client, { timeoutMs: 100, knownForMs: 5000, now: () => 0 });
  assert.deepEqual(await check.unknownProducts(["MW-NEW"]), new Set(["MW-NEW"]));
  known.add("MW-NEW");
  assert.deepEqual(await check.unknownProducts(["MW-NEW"]), new Set());
  assert.deepEqual(catalog.asked, ["MW-NEW", "MW-NEW"]);
});

test("with a product remembered, only the others are asked; a catalog that cannot answer is UNAVAILABLE", async () => {
  const catalog = fakeCatalog(new Set(["MW-TEA-TIN", "MW-WOOL-SOCKS"]));
  const check = createGrpcProductCheck(catalog.client, { timeoutMs: 100, knownForMs: 5000, now: () => 0 });
  await check.unknownProducts(["MW-TEA-TIN"]);
  catalog.goDown();
  assert.deepEqual(await check.unknownProducts(["MW-TEA-TIN"]), new Set(), "remembered: the catalog is not needed");
  await assert.rejects(check.unknownProducts(["MW-TEA-TIN", "MW-WOOL-SOCKS"]), (error: unknown) => error instanceof RpcError && error.code === Code.UNAVAILABLE);
  assert.deepEqual(catalog.asked, ["MW-TEA-TIN", "MW-WOOL-SOCKS"]);
});

test("knownForMs 0 asks at every placement", async () => {
  const catalog = fakeCatalog(new Set(["MW-TEA-TIN"]));
  const check = createGrpcProductCheck(catalog.client, { timeoutMs: 100, knownForMs: 0, now: () => 0 });
  await check.unknownProducts(["MW-TEA-TIN"]);
  await check.unknownProducts(["MW-TEA-TIN"]);
  assert.deepEqual(catalog.asked, ["MW-TEA-TIN", "MW-TEA-TIN"]);
});
