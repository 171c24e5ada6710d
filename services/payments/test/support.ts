/** Processors for the payments tests: one counting its calls, one answering only when told. */
import { createSimulatedProcessor } from "../src/adapters/payment-processor.simulated.js";
import type { PaymentProcessor, ProcessorDecision, ProcessorRequest } from "../src/ports.js";

/** The simulated processor with no latency and injected randomness, counting its calls. */
export function countingProcessor(rate: { value: number } = { value: 0 }) {
  const inner = createSimulatedProcessor({ latencyMs: () => 0, transientFailureRate: () => rate.value, random: () => 0.5 });
  const processor = {
    calls: 0,
    async authorize(request: ProcessorRequest, signal: AbortSignal): Promise<ProcessorDecision> {
      processor.calls++;
      return inner.authorize(request, signal);
    },
  };
  return processor;
}

export interface PendingCall {
  readonly request: ProcessorRequest;
  readonly signal: AbortSignal;
  answer(decision: ProcessorDecision): void;
  fail(error: Error): void;
}

/** A processor that answers only when the test says so; `next()` resolves with each call as it arrives. */
export function scriptedProcessor() {
  const arrived: PendingCall[] = [];
  const waiting: ((call: PendingCall) => void)[] = [];
  let handedOut = 0;
  const processor: PaymentProcessor & { calls: () => number; next(): Promise<PendingCall> } = {
    calls: () => arrived.length,
    authorize(request, signal) {
      return new Promise<ProcessorDecision>((resolve, reject) => {
        const call: PendingCall = { request, signal, answer: resolve, fail: reject };
        arrived.push(call);
        signal.addEventListener("abort", () => reject(signal.reason as Error), { once: true });
        const waiter = waiting.shift();
        if (waiter) {
          handedOut++;
          waiter(call);
        }
      });
    },
    next() {
      if (handedOut < arrived.length) return Promise.resolve(arrived[handedOut++]!);
      return new Promise((resolve) => waiting.push(resolve));
    },
  };
  return processor;
}
