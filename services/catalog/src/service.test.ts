import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { create } from "@bufbuild/protobuf";
import { GetProductRequestSchema, ListProductsRequestSchema, ReleaseStockRequestSchema, ReservationState, ReserveStockRequestSchema } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { Code } from "@meshwork/platform";
import { createTestCallContext, rejectsWith } from "@meshwork/testing";
import { createMemoryCatalogStore } from "./adapters/catalog-store.memory.js";
import { demoCatalog } from "./demo-catalog.js";
import { createCatalogHandlers, createStockHandlers } from "./service.js";

async function handlers() {
  const store = createMemoryCatalogStore();
  await store.seed(demoCatalog);
  return { store, catalog: createCatalogHandlers({ store }), stock: createStockHandlers({ store }) };
}

const context = createTestCallContext();

describe("catalog RPC handlers", () => {
  test("ListProducts pages through the whole catalog without repeats", async () => {
    const { catalog } = await handlers();
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await catalog.listProducts(create(ListProductsRequestSchema, { pageSize: 5, pageToken }), context);
      assert.ok(page.products!.length <= 5);
      seen.push(...page.products!.map((product) => product.id!));
      pageToken = page.nextPageToken ?? "";
    } while (pageToken !== "");
    assert.equal(seen.length, demoCatalog.length);
    assert.deepEqual(seen, [...seen].sort());
    assert.equal(new Set(seen).size, seen.length);
  });

  test("ListProducts filters by text and category and prices in minor units", async () => {
    const { catalog } = await handlers();
    const page = await catalog.listProducts(create(ListProductsRequestSchema, { query: "cast iron", category: "Kitchen" }), context);
    assert.deepEqual(
      page.products!.map((product) => product.id),
      ["MW-CAST-PAN"],
    );
    assert.deepEqual(page.products![0]?.price, { currencyCode: "EUR", amountMinor: 4500n });
    assert.equal(page.nextPageToken, "");
  });

  test("GetProduct of an unknown id is NOT_FOUND; a malformed id is INVALID_ARGUMENT naming product_id", async () => {
    const { catalog } = await handlers();
    await rejectsWith(catalog.getProduct(create(GetProductRequestSchema, { productId: "MW-NOPE" }), context), Code.NOT_FOUND, /MW-NOPE/);
    await rejectsWith(catalog.getProduct(create(GetProductRequestSchema, { productId: "" }), context), Code.INVALID_ARGUMENT, /^product_id: is required/);
    await rejectsWith(catalog.getProduct(create(GetProductRequestSchema, { productId: "x".repeat(10_000) }), context), Code.INVALID_ARGUMENT, /^product_id: must be at most 64/);
  });

  test("out-of-range list input names the field", async () => {
    const { catalog } = await handlers();
    await rejectsWith(catalog.listProducts(create(ListProductsRequestSchema, { pageSize: -1 }), context), Code.INVALID_ARGUMENT, /^page_size:/);
    await rejectsWith(catalog.listProducts(create(ListProductsRequestSchema, { pageSize: 1000 }), context), Code.INVALID_ARGUMENT, /^page_size:/);
    await rejectsWith(catalog.listProducts(create(ListProductsRequestSchema, { query: "q".repeat(101) }), context), Code.INVALID_ARGUMENT, /^query:/);
    await rejectsWith(catalog.listProducts(create(ListProductsRequestSchema, { pageToken: "garbage" }), context), Code.INVALID_ARGUMENT, /^page_token:/);
  });

  test("ReserveStock reserves, prices, and is idempotent per order id", async () => {
    const { stock, store } = await handlers();
    const request = create(ReserveStockRequestSchema, { orderId: "o-1", items: [{ productId: "MW-CAST-PAN", quantity: 3 }] });
    const first = await stock.reserveStock(request, context);
    const second = await stock.reserveStock(request, context);
    assert.deepEqual(second, first);
    assert.equal(first.reservation?.state, ReservationState.RESERVED);
    assert.deepEqual(first.reservation?.unitPrices, { "MW-CAST-PAN": { currencyCode: "EUR", amountMinor: 4500n } });
    assert.equal((await store.getProduct("MW-CAST-PAN"))?.stock, 37);
  });

  test("refusals map to their codes: too little stock and a released order are FAILED_PRECONDITION, an unknown product NOT_FOUND", async () => {
    const { stock } = await handlers();
    await rejectsWith(
      stock.reserveStock(create(ReserveStockRequestSchema, { orderId: "o-2", items: [{ productId: "MW-RAIN-JACKET", quantity: 26 }] }), context),
      Code.FAILED_PRECONDITION,
      /insufficient stock: product MW-RAIN-JACKET: 26 requested, 25 available/,
    );
    await rejectsWith(stock.reserveStock(create(ReserveStockRequestSchema, { orderId: "o-2", items: [{ productId: "MW-NOPE", quantity: 1 }] }), context), Code.NOT_FOUND, /MW-NOPE/);
    const released = await stock.releaseStock(create(ReleaseStockRequestSchema, { orderId: "o-3" }), context);
    assert.equal(released.reservation?.state, ReservationState.RELEASED);
    await rejectsWith(
      stock.reserveStock(create(ReserveStockRequestSchema, { orderId: "o-3", items: [{ productId: "MW-TEA-TIN", quantity: 1 }] }), context),
      Code.FAILED_PRECONDITION,
      /already released/,
    );
  });

  test("bad reservation input names the field and writes nothing", async () => {
    const { stock, store } = await handlers();
    const before = await store.listProducts({ limit: 100 });
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ orderId: "", items: [{ productId: "MW-TEA-TIN", quantity: 1 }] }, /^order_id: is required/],
      [{ orderId: "o 4", items: [{ productId: "MW-TEA-TIN", quantity: 1 }] }, /^order_id:/],
      [{ orderId: "o-4", items: [] }, /^items: must list at least one/],
      [{ orderId: "o-4", items: [{ productId: "MW-TEA-TIN", quantity: -2 }] }, /^items\[0\]\.quantity: must be from 1 to 1000/],
      [
        {
          orderId: "o-4",
          items: [
            { productId: "MW-TEA-TIN", quantity: 1 },
            { productId: "", quantity: 1 },
          ],
        },
        /^items\[1\]\.product_id: is required/,
      ],
      [{ orderId: "o-4", items: [{ productId: "MW-TEA-TIN", quantity: 2_000_000 }] }, /^items\[0\]\.quantity/],
    ];
    for (const [input, message] of cases) {
      await rejectsWith(stock.reserveStock(create(ReserveStockRequestSchema, input), context), Code.INVALID_ARGUMENT, message);
    }
    assert.deepEqual(await store.listProducts({ limit: 100 }), before);
    await rejectsWith(stock.releaseStock(create(ReleaseStockRequestSchema, { orderId: "" }), context), Code.INVALID_ARGUMENT, /^order_id/);
  });
});
