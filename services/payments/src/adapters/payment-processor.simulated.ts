import { setTimeout as delay } from "node:timers/promises";
import { ProcessorUnavailableError } from "../payments.js";
import type { PaymentProcessor } from "../ports.js";

/**
 * Card tokens the simulation declines, with the reason a shopper sees. Any
 * other token is approved (unless a transient failure strikes first).
 */
export const TEST_CARD_TOKENS: Readonly<Record<string, string>> = Object.freeze({
  tok_declined: "card declined by the issuer",
  tok_insufficient_funds: "insufficient funds",
});

export interface SimulatedProcessorOptions {
  /** Read on every call, so a live-config change applies to the next one. */
  readonly latencyMs: () => number;
  /** Probability (0..1) that a call fails as if the processor were briefly down; read on every call. */
  readonly transientFailureRate: () => number;
  /** Uniform in [0, 1); injected so tests decide which calls fail. */
  readonly random?: () => number;
  /** Waits `ms` or rejects when `signal` aborts; injected so tests observe the latency without waiting for it. */
  readonly wait?: (ms: number, signal: AbortSignal) => Promise<void>;
}

const realWait = (ms: number, signal: AbortSignal): Promise<void> => delay(ms, undefined, { signal });

/**
 * A card processor that answers after a (live) latency, fails a (live)
 * share of calls transiently, and decides by the documented test tokens.
 * It keeps no state: nothing here is held on any card, so there is nothing
 * for a void to release.
 */
export function createSimulatedProcessor(options: SimulatedProcessorOptions): PaymentProcessor {
  const random = options.random ?? Math.random;
  const wait = options.wait ?? realWait;
  return {
    async authorize(request, signal) {
      signal.throwIfAborted();
      const latencyMs = options.latencyMs();
      if (latencyMs > 0) await wait(latencyMs, signal);
      // random() is in [0, 1): a rate of 0 never fails and a rate of 1 always does.
      if (random() < options.transientFailureRate()) throw new ProcessorUnavailableError("simulated processor: transient failure");
      const reason = Object.hasOwn(TEST_CARD_TOKENS, request.cardToken) ? TEST_CARD_TOKENS[request.cardToken] : undefined;
      return reason === undefined ? { approved: true } : { approved: false, reason };
    },
  };
}
