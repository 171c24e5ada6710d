import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { ProcessorUnavailableError } from "../payments.js";
import { createSimulatedProcessor, TEST_CARD_TOKENS } from "./payment-processor.simulated.js";

const ask = (cardToken: string) => ({ idempotencyKey: "order-1", amountMinor: 100, currency: "EUR", cardToken });
const never = new AbortController().signal;

describe("simulated card processor", () => {
  test("approves any card except the documented test tokens, which are declined with a shopper-readable reason", async () => {
    const processor = createSimulatedProcessor({ latencyMs: () => 0, transientFailureRate: () => 0 });
    assert.deepEqual(await processor.authorize(ask("tok_visa"), never), { approved: true });
    assert.deepEqual(await processor.authorize(ask("tok_declined"), never), { approved: false, reason: "card declined by the issuer" });
    assert.deepEqual(await processor.authorize(ask("tok_insufficient_funds"), never), { approved: false, reason: "insufficient funds" });
    assert.deepEqual(Object.keys(TEST_CARD_TOKENS).sort(), ["tok_declined", "tok_insufficient_funds"]);
    assert.deepEqual(await processor.authorize(ask("toString"), never), { approved: true }, "inherited object keys are not test tokens");
  });

  test("fails transiently exactly when the injected random number falls below the rate", async () => {
    const draws = [0.05, 0.5, 0.29, 0.3];
    const processor = createSimulatedProcessor({ latencyMs: () => 0, transientFailureRate: () => 0.3, random: () => draws.shift()! });
    const outcomes = [];
    for (let call = 0; call < 4; call++) {
      outcomes.push(
        await processor.authorize(ask("tok_visa"), never).then(
          () => "approved",
          (error: unknown) => (error instanceof ProcessorUnavailableError ? "unavailable" : String(error)),
        ),
      );
    }
    assert.deepEqual(outcomes, ["unavailable", "approved", "unavailable", "approved"]);
  });

  test("reads latency and failure rate on every call, so a change applies to the next call", async () => {
    const waited: number[] = [];
    let latencyMs = 0;
    let rate = 0;
    const processor = createSimulatedProcessor({
      latencyMs: () => latencyMs,
      transientFailureRate: () => rate,
      random: () => 0.5,
      wait: async (ms) => void waited.push(ms),
    });
    await processor.authorize(ask("tok_visa"), never);
    latencyMs = 250;
    await processor.authorize(ask("tok_visa"), never);
    rate = 1;
    await assert.rejects(processor.authorize(ask("tok_visa"), never), ProcessorUnavailableError);
    assert.deepEqual(waited, [250, 250], "no wait at latency 0; the new latency on each later call");
  });

  test("an aborted signal stops the wait for the answer", async () => {
    const processor = createSimulatedProcessor({ latencyMs: () => 60_000, transientFailureRate: () => 0 });
    const controller = new AbortController();
    const answer = processor.authorize(ask("tok_visa"), controller.signal);
    controller.abort();
    await assert.rejects(answer, { name: "AbortError" });
    await assert.rejects(processor.authorize(ask("tok_visa"), controller.signal), { name: "AbortError" });
  });
});
