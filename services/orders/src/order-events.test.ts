import assert from "node:assert/strict";
import { test } from "vitest";
import { createUpcast } from "@meshwork/platform";
import { eventForStep, foldOrder, orderUpcasters, type FoldableEvent } from "./order-events.js";

const at = (second: number) => new Date(Date.UTC(2026, 11, 6, 12, 0, second));
const placed: FoldableEvent = {
  type: "OrderPlaced",
  version: 1,
  recordedAt: at(0),
  data: { userId: "u", idempotencyKey: "key-12345678", fingerprint: "f", requestId: "r", items: [{ productId: "MW-TEA-TIN", quantity: 2 }], shipping: null },
};
const reserved: FoldableEvent = { type: "StockReserved", version: 2, recordedAt: at(1), data: { lines: [{ productId: "MW-TEA-TIN", quantity: 2, unitPriceMinor: 450, currency: "EUR" }] } };

test("the fold prices the order at StockReserved and ends it at its final event, with a timeline entry per event", () => {
  const order = foldOrder("o1", [
    placed,
    reserved,
    { type: "PaymentDeclined", version: 3, recordedAt: at(2), data: { reason: "declined" } },
    { type: "OrderRejected", version: 4, recordedAt: at(3), data: { reason: "declined" } },
  ])!;
  assert.deepEqual([order.status, order.reason, order.totalMinor, order.currency, order.version], ["rejected", "declined", 900, "EUR", 4]);
  assert.deepEqual(
    order.history.map((entry) => [entry.step, entry.detail]),
    [
      ["order_placed", ""],
      ["stock_reserved", ""],
      ["payment_declined", "declined"],
      ["order_rejected", "declined"],
    ],
  );
  assert.deepEqual([order.createdAt, order.updatedAt], [at(0), at(3)]);
  assert.equal(foldOrder("o1", []), undefined);
});

test("a corrupt stream is an error naming the order, not a guessed order", () => {
  assert.throws(() => foldOrder("o1", [reserved]), /order o1: event StockReserved has version 2, expected 1/);
  assert.throws(() => foldOrder("o1", [{ ...reserved, version: 1 }]), /stream of order o1 starts with StockReserved/);
  assert.throws(() => foldOrder("o1", [placed, { ...reserved, version: 3 }]), /version 3, expected 2/);
  assert.throws(() => foldOrder("o1", [placed, { type: "OrderShipped", version: 2, recordedAt: at(1), data: {} }]), /unknown event type OrderShipped at version 2/);
  const confirmed = { type: "OrderConfirmed", version: 2, recordedAt: at(1), data: {} };
  assert.throws(() => foldOrder("o1", [placed, confirmed, { type: "OrderFailed", version: 3, recordedAt: at(2), data: { reason: "x" } }]), /already confirmed; OrderFailed cannot follow/);
  assert.throws(() => eventForStep("stock_reserved", "", undefined), /without the reserved lines/);
});

test("the upcasters read the migrated schema 1 ({ detail }, the old row's lines) as schema 2", () => {
  const upcast = createUpcast(orderUpcasters);
  assert.deepEqual(upcast("OrderRejected", 1, { detail: "card declined" }, {}), { schemaVersion: 2, data: { reason: "card declined" } });
  assert.deepEqual(upcast("PaymentVoided", 1, { detail: "" }, {}), { schemaVersion: 2, data: {} });
  const lines = [{ productId: "MW-TEA-TIN", quantity: 2, unitPriceMinor: 450, currency: "EUR" }];
  assert.deepEqual(upcast("StockReserved", 1, { detail: "", lines }, {}), { schemaVersion: 2, data: { lines } });
  assert.deepEqual(upcast("OrderPlaced", 1, { userId: "u", detail: "", lines, shipping: null }, {}), {
    schemaVersion: 2,
    data: { userId: "u", shipping: null, items: [{ productId: "MW-TEA-TIN", quantity: 2 }] },
  });
  // Schema 2 passes through untouched.
  assert.deepEqual(upcast("OrderRejected", 2, { reason: "x" }, {}), { schemaVersion: 2, data: { reason: "x" } });
});
