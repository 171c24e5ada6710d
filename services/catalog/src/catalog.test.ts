import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { fieldRefusal } from "@meshwork/testing";
import { checkId, checkPageSize, checkStockLines, decodePageToken, encodePageToken, sameLines } from "./catalog.js";

const fieldOf = (work: () => unknown): string => fieldRefusal(work).field;

describe("catalog request rules", () => {
  test("ids must be 1 to 64 letters, digits, '-' or '_'", () => {
    assert.equal(checkId("product_id", "MW-CAST_PAN1"), "MW-CAST_PAN1");
    assert.throws(() => checkId("product_id", ""), /product_id: is required/);
    assert.throws(() => checkId("product_id", "x".repeat(65)), /at most 64/);
    assert.throws(() => checkId("order_id", "a b"), /order_id: may contain only/);
  });

  test("page size 0 means the default; negative or above 100 is refused", () => {
    assert.equal(checkPageSize(0), 20);
    assert.equal(checkPageSize(100), 100);
    assert.equal(
      fieldOf(() => checkPageSize(101)),
      "page_size",
    );
    assert.equal(
      fieldOf(() => checkPageSize(-1)),
      "page_size",
    );
  });

  test("stock lines are validated with the offending index named, and sorted by product id", () => {
    assert.deepEqual(
      checkStockLines([
        { productId: "B", quantity: 1 },
        { productId: "A", quantity: 2 },
      ]),
      [
        { productId: "A", quantity: 2 },
        { productId: "B", quantity: 1 },
      ],
    );
    assert.equal(
      fieldOf(() => checkStockLines([])),
      "items",
    );
    assert.equal(
      fieldOf(() => checkStockLines([{ productId: "A", quantity: 0 }])),
      "items[0].quantity",
    );
    assert.equal(
      fieldOf(() =>
        checkStockLines([
          { productId: "A", quantity: 1 },
          { productId: "B", quantity: -4 },
        ]),
      ),
      "items[1].quantity",
    );
    assert.equal(
      fieldOf(() => checkStockLines([{ productId: "A", quantity: 1001 }])),
      "items[0].quantity",
    );
    assert.equal(
      fieldOf(() =>
        checkStockLines([
          { productId: "A", quantity: 1 },
          { productId: "A", quantity: 1 },
        ]),
      ),
      "items[1].product_id",
    );
    assert.equal(
      fieldOf(() => checkStockLines(Array.from({ length: 51 }, (_, index) => ({ productId: `P${index}`, quantity: 1 })))),
      "items",
    );
  });

  test("a page token is bound to the query it was issued for", () => {
    const token = encodePageToken({ after: "MW-B", text: "mug", category: "" });
    assert.equal(decodePageToken(token, "mug", ""), "MW-B");
    assert.equal(decodePageToken("", "anything", ""), undefined);
    assert.throws(() => decodePageToken(token, "cup", ""), /page_token: was issued for a different query/);
    assert.throws(() => decodePageToken("%%%not-base64", "", ""), /page_token: is not a token/);
    assert.throws(() => decodePageToken(Buffer.from("{}").toString("base64url"), "", ""), /page_token: is not a token/);
  });

  test("a repeated reservation matches only the very same lines", () => {
    assert.ok(sameLines([{ productId: "A", quantity: 1 }], [{ productId: "A", quantity: 1 }]));
    assert.ok(!sameLines([{ productId: "A", quantity: 1 }], [{ productId: "A", quantity: 2 }]));
    assert.ok(!sameLines([{ productId: "A", quantity: 1 }], []));
  });
});
