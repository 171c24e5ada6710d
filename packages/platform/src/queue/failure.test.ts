import assert from "node:assert/strict";
import { test } from "vitest";
import { attemptOf, checkTopology, describeError, exhaustedReason, nextStep, unparseableReason } from "./failure.js";

test("after each failed attempt the next retry delay applies; after the last delay the message is dead-lettered", () => {
  const delays = [1_000, 5_000, 30_000];
  assert.deepEqual(nextStep(1, delays), { kind: "retry", index: 0, delayMs: 1_000, nextAttempt: 2 });
  assert.deepEqual(nextStep(2, delays), { kind: "retry", index: 1, delayMs: 5_000, nextAttempt: 3 });
  assert.deepEqual(nextStep(3, delays), { kind: "retry", index: 2, delayMs: 30_000, nextAttempt: 4 });
  assert.deepEqual(nextStep(4, delays), { kind: "dead-letter" });
  assert.deepEqual(nextStep(1, []), { kind: "dead-letter" }, "no delays: the first failure dead-letters");
});

test("the attempt header is read leniently: missing or nonsense counts as the first attempt", () => {
  assert.equal(attemptOf(undefined), 1);
  assert.equal(attemptOf(3), 3);
  assert.equal(attemptOf("2"), 2);
  assert.equal(attemptOf("two"), 1);
  assert.equal(attemptOf(0), 1);
  assert.equal(attemptOf(1.5), 1);
});

test("reasons name the error, cut to a size a header table can carry", () => {
  assert.equal(unparseableReason(new SyntaxError("Unexpected token")), "unparseable: Unexpected token");
  assert.equal(exhaustedReason(4, new Error("down")), "failed 4 attempts; last error: down");
  assert.equal(exhaustedReason(1, "plain string"), "failed 1 attempt; last error: plain string");
  const long = describeError(new Error("x".repeat(100_000)));
  assert.ok(long.length <= 1_001 && long.endsWith("…"));
});

test("a topology the broker would refuse later is refused up front, naming the problem", () => {
  const ok = { queue: "q", bindings: ["a.#"], retryDelaysMs: [10] };
  assert.doesNotThrow(() => checkTopology(ok, 1));
  assert.throws(() => checkTopology({ ...ok, bindings: [] }, 1), /at least one binding/);
  assert.throws(() => checkTopology({ ...ok, retryDelaysMs: [10, -1] }, 1), /retryDelaysMs\[1\]/);
  assert.throws(() => checkTopology(ok, 0), /prefetch/);
});
