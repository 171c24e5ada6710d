import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { backoffMs, decide, type RetryPolicy, type SagaState } from "./saga.js";

const policy: RetryPolicy = { maxAttempts: 3, backoffBaseMs: 100, backoffMaxMs: 1000 };
const state = (overrides: Partial<SagaState> = {}): SagaState => ({ orderId: "o-1", step: "reserve_stock", attempts: 0, authorizeAttempted: false, outcome: undefined, ...overrides });
const lines = [{ productId: "P", quantity: 2, unitPriceMinor: 500, currency: "EUR" }];
const half = () => 0.5;

describe("order saga decisions", () => {
  test("reserved stock moves on to payment with the priced lines", () => {
    const next = decide(state(), { kind: "reserved", lines }, policy, half);
    assert.equal(next.step, "authorize_payment");
    assert.deepEqual(next.lines, lines);
    assert.equal(next.status, undefined, "still PENDING");
    assert.deepEqual(
      next.history.map((entry) => entry.step),
      ["stock_reserved"],
    );
  });

  test("an authorized payment confirms the order", () => {
    const next = decide(state({ step: "authorize_payment" }), { kind: "authorized" }, policy, half);
    assert.equal(next.step, "done");
    assert.equal(next.status, "confirmed");
    assert.deepEqual(
      next.history.map((entry) => entry.step),
      ["payment_authorized", "order_confirmed"],
    );
  });

  test("refused stock compensates towards REJECTED with the reason, without voiding a payment never asked for", () => {
    const next = decide(state(), { kind: "stock_refused", reason: "out of stock: P" }, policy, half);
    assert.equal(next.step, "compensate");
    assert.deepEqual(next.outcome, { status: "rejected", reason: "out of stock: P" });
    assert.equal(next.authorizeAttempted, false);
    assert.equal(next.status, undefined, "final only once compensated");
  });

  test("a declined card compensates towards REJECTED and remembers that payment was asked", () => {
    const next = decide(state({ step: "authorize_payment" }), { kind: "declined", reason: "card declined by the issuer" }, policy, half);
    assert.equal(next.step, "compensate");
    assert.equal(next.authorizeAttempted, true);
    assert.deepEqual(next.outcome, { status: "rejected", reason: "card declined by the issuer" });
    assert.deepEqual(
      next.history.map((entry) => entry.step),
      ["payment_declined"],
    );
  });

  test("transient failures retry with full-jitter back-off, then compensate towards FAILED", () => {
    const first = decide(state(), { kind: "transient", reason: "UNAVAILABLE" }, policy, half);
    assert.equal(first.step, "reserve_stock");
    assert.equal(first.attempts, 1);
    assert.equal(first.delayMs, 100, "half of min(1000, 100 * 2^1)");
    const second = decide(state({ attempts: 1 }), { kind: "transient", reason: "UNAVAILABLE" }, policy, half);
    assert.equal(second.attempts, 2);
    const exhausted = decide(state({ attempts: 2 }), { kind: "transient", reason: "UNAVAILABLE" }, policy, half);
    assert.equal(exhausted.step, "compensate");
    assert.equal(exhausted.outcome?.status, "failed");
    assert.match(exhausted.outcome?.reason ?? "", /catalog stayed unavailable/);
  });

  test("a payment that timed out is treated as possibly authorized: compensation voids it", () => {
    const retry = decide(state({ step: "authorize_payment" }), { kind: "transient", reason: "DEADLINE_EXCEEDED" }, policy, half);
    assert.equal(retry.authorizeAttempted, true);
    const exhausted = decide(state({ step: "authorize_payment", attempts: 2 }), { kind: "transient", reason: "DEADLINE_EXCEEDED" }, policy, half);
    assert.equal(exhausted.step, "compensate");
    assert.equal(exhausted.authorizeAttempted, true);
  });

  test("compensation never gives up, and ends in the outcome decided when it began", () => {
    const compensating = state({ step: "compensate", attempts: 50, authorizeAttempted: true, outcome: { status: "rejected", reason: "card declined" } });
    const retry = decide(compensating, { kind: "transient", reason: "UNAVAILABLE" }, policy, half);
    assert.equal(retry.step, "compensate");
    assert.ok(retry.delayMs <= policy.backoffMaxMs);
    const done = decide(compensating, { kind: "compensated", stockReleased: true, paymentVoided: true }, policy, half);
    assert.equal(done.step, "done");
    assert.equal(done.status, "rejected");
    assert.equal(done.reason, "card declined");
    assert.deepEqual(
      done.history.map((entry) => entry.step),
      ["payment_voided", "stock_released", "order_rejected"],
    );
  });

  test("a result that cannot follow the step is a programming error, not a silent transition", () => {
    assert.throws(() => decide(state(), { kind: "authorized" }, policy, half), /cannot follow step reserve_stock/);
  });

  test("back-off stays within [0, min(max, base * 2^attempt))", () => {
    for (let attempt = 0; attempt < 40; attempt++) {
      const ceiling = Math.min(policy.backoffMaxMs, policy.backoffBaseMs * 2 ** attempt);
      assert.equal(
        backoffMs(policy, attempt, () => 0),
        0,
      );
      assert.ok(backoffMs(policy, attempt, () => 0.999999) < ceiling);
    }
  });
});
