/**
 * The resilience of one downstream, around each call a client makes to it:
 *
 *   circuit breaker (fail fast while the downstream is failing)
 *     -> retry (idempotent calls only, retryable codes, full-jitter back-off, budget)
 *       -> bulkhead (at most N calls in flight, a small queue, then refuse)
 *         -> one attempt on the instance the balancer picks
 *
 * The breaker sees one outcome per call, after its retries: a call that
 * failed on a dying instance and succeeded on another is a success, so one
 * instance going away (the balancer's business: it ejects it) does not open
 * the breaker of the whole service.
 *
 * Retry, bulkhead and breaker are cockatiel's; the budget (retry-budget.ts)
 * and instance ejection (instance-balancer.ts) are ours. Settings are read
 * live: a change rebuilds the policy it concerns (a rebuilt breaker starts
 * closed).
 */
import {
  BrokenCircuitError,
  BulkheadRejectedError,
  bulkhead as createBulkhead,
  circuitBreaker,
  CircuitState,
  ConsecutiveBreaker,
  CountBreaker,
  ExponentialBackoff,
  fullJitterGenerator,
  handleWhen,
  retry as createRetry,
  type BulkheadPolicy,
  type CircuitBreakerPolicy,
  type IBreaker,
  type RetryPolicy,
  TaskCancelledError,
} from "cockatiel";
import { untilAborted } from "../abortable.js";
import { Code, isRpcError, RpcError } from "../rpc-errors.js";
import { createRetryBudget, type RetryBudget } from "./retry-budget.js";
import { retryableCodes, type ResilienceSettings } from "./settings.js";

export type BreakerState = "closed" | "open" | "half-open";

/** Statuses that say the downstream (not the request) is in trouble: they count against the breaker. */
const DOWNSTREAM_FAILURES: ReadonlySet<Code> = new Set([Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.INTERNAL, Code.UNKNOWN, Code.RESOURCE_EXHAUSTED]);

export function isDownstreamFailure(error: unknown): boolean {
  return isRpcError(error) && !(error instanceof FastFailError) && DOWNSTREAM_FAILURES.has(error.code);
}

/** Refused here without reaching the downstream (breaker open, bulkhead full): never retried, never counted. */
export class FastFailError extends RpcError {}

export interface PolicyCounters {
  /** Attempts that reached the network. */
  attempts: number;
  retries: number;
  /** Retries refused because the budget was spent. */
  retriesRefusedByBudget: number;
  rejectedByBreaker: number;
  rejectedByBulkhead: number;
}

export interface RunOptions {
  /** Retried only when true (and the code is retryable and the budget allows). */
  readonly idempotent: boolean;
  /** Absolute deadline (epoch ms): a call still queued in the bulkhead then gives up. */
  readonly deadline: number;
  /** The caller's cancellation. */
  readonly signal: AbortSignal | undefined;
}

export interface DownstreamPolicy {
  readonly name: string;
  /**
   * Runs one logical call. `attempt` makes one try (the pool picks an
   * instance per try); `signal` ends waiting in the bulkhead queue.
   */
  run<T>(attempt: () => Promise<T>, options: RunOptions): Promise<T>;
  breakerState(): BreakerState;
  onBreakerChange(listener: (state: BreakerState) => void): () => void;
  readonly budget: RetryBudget;
  readonly counters: Readonly<PolicyCounters>;
}

/** Opens when either breaker says so: failures in a row, or too large a share of the recent calls. */
class EitherBreaker implements IBreaker {
  constructor(
    private readonly consecutive: ConsecutiveBreaker,
    private readonly ratio: CountBreaker,
  ) {}
  get state(): unknown {
    return { consecutive: this.consecutive.state, ratio: this.ratio.state };
  }
  set state(value: unknown) {
    const { consecutive, ratio } = value as { consecutive: number; ratio: unknown };
    this.consecutive.state = consecutive;
    this.ratio.state = ratio;
  }
  success(state: CircuitState): void {
    this.consecutive.success();
    this.ratio.success(state);
  }
  failure(state: CircuitState): boolean {
    // Both see every failure, so neither's window goes stale.
    const inRow = this.consecutive.failure();
    const share = this.ratio.failure(state);
    return inRow || share;
  }
}

const STATE_NAMES: Record<CircuitState, BreakerState> = {
  [CircuitState.Closed]: "closed",
  [CircuitState.Open]: "open",
  [CircuitState.HalfOpen]: "half-open",
  [CircuitState.Isolated]: "open",
};

export function createDownstreamPolicy(name: string, settings: () => ResilienceSettings): DownstreamPolicy {
  const counters: PolicyCounters = { attempts: 0, retries: 0, retriesRefusedByBudget: 0, rejectedByBreaker: 0, rejectedByBulkhead: 0 };
  const budget = createRetryBudget(() => settings().budget);
  const listeners = new Set<(state: BreakerState) => void>();

  let built: { source: ResilienceSettings; breaker: CircuitBreakerPolicy | undefined; bulkhead: BulkheadPolicy; retry: RetryPolicy; codes: ReadonlySet<Code> } | undefined;
  let lastState: BreakerState = "closed";
  const announce = (state: BreakerState): void => {
    if (state === lastState) return;
    lastState = state;
    for (const listener of [...listeners]) listener(state);
  };

  const build = () => {
    const current = settings();
    if (built?.source === current) return built;
    const previous = built;
    const sameBreaker = previous !== undefined && JSON.stringify(previous.source.breaker) === JSON.stringify(current.breaker);
    const sameBulkhead = previous !== undefined && JSON.stringify(previous.source.bulkhead) === JSON.stringify(current.bulkhead);
    const codes = retryableCodes(current);
    let breaker: CircuitBreakerPolicy | undefined;
    if (sameBreaker) {
      breaker = previous.breaker;
    } else if (!current.breaker.enabled) {
      breaker = undefined;
      announce("closed");
    } else {
      const { consecutiveFailures, failureRatio, window, minimumCalls, halfOpenAfterMs } = current.breaker;
      breaker = circuitBreaker(handleWhen(isDownstreamFailure), {
        halfOpenAfter: halfOpenAfterMs,
        breaker: new EitherBreaker(new ConsecutiveBreaker(consecutiveFailures), new CountBreaker({ threshold: failureRatio, size: window, minimumNumberOfCalls: minimumCalls })),
      });
      breaker.onStateChange((state) => announce(STATE_NAMES[state]));
      announce("closed");
    }
    const bulkhead = sameBulkhead ? previous.bulkhead : createBulkhead(current.bulkhead.maxConcurrent, current.bulkhead.maxQueue);
    const retry = createRetry(
      handleWhen((error) => {
        if (error instanceof FastFailError || !isRpcError(error) || !codes.has(error.code)) return false;
        if (retryAllowed.has(error)) return true;
        counters.retriesRefusedByBudget += 1;
        return false;
      }),
      {
        maxAttempts: current.retry.maxAttempts - 1,
        backoff: new ExponentialBackoff({ initialDelay: current.retry.initialBackoffMs, maxDelay: current.retry.maxBackoffMs, generator: fullJitterGenerator }),
      },
    );
    retry.onRetry(() => {
      counters.retries += 1;
    });
    built = { source: current, breaker, bulkhead, retry, codes };
    return built;
  };

  // Failed attempts the budget allowed to retry, decided when each failed:
  // deciding later, when cockatiel asks, would let a burst of simultaneous
  // failures spend the whole budget before any of them is considered.
  const retryAllowed = new WeakSet<object>();

  const once = async <T>(attempt: () => Promise<T>, options: RunOptions): Promise<T> => {
    const { bulkhead, codes } = build();
    // Only a call that will wait in the queue needs a deadline signal (a timer): the others start at once.
    const queued = bulkhead.executionSlots === 0;
    const signal = queued ? queueSignal(options) : options.signal;
    const guarded = bulkhead.execute(async () => {
      counters.attempts += 1;
      try {
        const result = await attempt();
        budget.recordSuccess();
        return result;
      } catch (error) {
        if (isRpcError(error) && codes.has(error.code)) {
          budget.recordFailure();
          if (budget.allowRetry()) retryAllowed.add(error);
        }
        throw error;
      }
    }, signal);
    try {
      // The bulkhead's queue notices an abort only when a slot frees; a
      // queued call whose deadline passed must not wait for that. A call that
      // started at once needs no race: its attempt cancels itself on the
      // caller's signal (an abort listener and a promise less per call).
      return await (queued && signal !== undefined ? untilAborted(guarded, signal, queueAbortReason) : guarded);
    } catch (error) {
      throw translate(error, name, bulkhead, counters);
    }
  };

  return {
    name,
    async run(attempt, options) {
      const { breaker, retry } = build();
      const retried = options.idempotent && settings().retry.maxAttempts > 1;
      try {
        const call = () => (retried ? retry.execute(() => once(attempt, options), options.signal) : once(attempt, options));
        return await (breaker ? breaker.execute(call) : call());
      } catch (error) {
        throw translate(error, name, built!.bulkhead, counters);
      }
    },
    breakerState() {
      build();
      return built?.breaker === undefined ? "closed" : STATE_NAMES[built.breaker.state];
    },
    onBreakerChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    budget,
    counters,
  };
}

function queueSignal(options: RunOptions): AbortSignal {
  const left = Math.max(0, options.deadline - Date.now());
  const timeout = AbortSignal.timeout(left);
  return options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
}

/** Why a call waiting for a bulkhead slot gave up. */
function queueAbortReason(signal: AbortSignal): RpcError {
  return signal.reason instanceof DOMException && signal.reason.name === "TimeoutError"
    ? new RpcError(Code.DEADLINE_EXCEEDED, "deadline passed while waiting for a call slot")
    : new RpcError(Code.CANCELLED, "call cancelled while waiting for a call slot");
}

function translate(error: unknown, name: string, bulkhead: BulkheadPolicy, counters: PolicyCounters): unknown {
  if (isRpcError(error)) return error;
  if (error instanceof BrokenCircuitError) {
    counters.rejectedByBreaker += 1;
    return new FastFailError(Code.UNAVAILABLE, `${name} is failing: circuit open, call refused without trying`);
  }
  if (error instanceof BulkheadRejectedError) {
    counters.rejectedByBulkhead += 1;
    return new FastFailError(Code.UNAVAILABLE, `${name} is overloaded: ${bulkhead.executionSlots === 0 ? "every call slot is busy" : "no call slot"} and the queue is full`);
  }
  if (error instanceof TaskCancelledError) return new RpcError(Code.CANCELLED, `call to ${name} cancelled while queued`);
  return error;
}
