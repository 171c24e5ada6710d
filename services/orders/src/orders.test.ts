import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { checkPlacement, decodeOrderCursor, encodeOrderCursor, InvalidFieldError, placementFingerprint, type PlacementRequest } from "./orders.js";

const valid: PlacementRequest = {
  idempotencyKey: "key-12345",
  items: [
    { productId: "B", quantity: 1 },
    { productId: "A", quantity: 2 },
  ],
  cardToken: "tok_visa",
};

const fieldOf = (request: PlacementRequest): string => {
  try {
    checkPlacement(request);
  } catch (error) {
    if (error instanceof InvalidFieldError) return error.field;
    throw error;
  }
  return "(valid)";
};

describe("order placement rules", () => {
  test("a valid placement is accepted with its items ordered by product id", () => {
    assert.deepEqual(
      checkPlacement(valid).items.map((item) => item.productId),
      ["A", "B"],
    );
  });

  test("every rule names its field", () => {
    assert.equal(fieldOf({ ...valid, idempotencyKey: "short" }), "idempotency_key");
    assert.equal(fieldOf({ ...valid, idempotencyKey: "k".repeat(65) }), "idempotency_key");
    assert.equal(fieldOf({ ...valid, idempotencyKey: "has spaces in it" }), "idempotency_key");
    assert.equal(fieldOf({ ...valid, items: [] }), "items");
    assert.equal(fieldOf({ ...valid, items: [{ productId: "A", quantity: -1 }] }), "items[0].quantity");
    assert.equal(
      fieldOf({
        ...valid,
        items: [
          { productId: "A", quantity: 1 },
          { productId: "x".repeat(65), quantity: 1 },
        ],
      }),
      "items[1].product_id",
    );
    assert.equal(
      fieldOf({
        ...valid,
        items: [
          { productId: "A", quantity: 1 },
          { productId: "A", quantity: 1 },
        ],
      }),
      "items[1].product_id",
    );
    assert.equal(fieldOf({ ...valid, cardToken: "" }), "payment_method.card_token");
    assert.equal(fieldOf({ ...valid, cardToken: "tok with space" }), "payment_method.card_token");
  });

  test("the fingerprint ignores item order but not quantities or the card, and never contains the token", () => {
    const reordered = { ...valid, items: [...valid.items].reverse() };
    assert.equal(placementFingerprint(checkPlacement(valid)), placementFingerprint(checkPlacement(reordered)));
    assert.notEqual(placementFingerprint(checkPlacement(valid)), placementFingerprint(checkPlacement({ ...valid, items: [{ productId: "A", quantity: 3 }] })));
    assert.notEqual(placementFingerprint(checkPlacement(valid)), placementFingerprint(checkPlacement({ ...valid, cardToken: "tok_declined" })));
    assert.ok(!placementFingerprint(valid).includes("tok_visa"));
  });

  test("list cursors round-trip and garbage is refused naming page_token", () => {
    const cursor = { createdAt: new Date("2026-01-02T03:04:05.678Z"), id: "o-9" };
    assert.deepEqual(decodeOrderCursor(encodeOrderCursor(cursor)), cursor);
    assert.equal(decodeOrderCursor(""), undefined);
    assert.throws(() => decodeOrderCursor("nonsense"), /page_token/);
  });
});
