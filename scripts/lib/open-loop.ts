/**
 * Open-loop arrivals: request i is sent at its intended time
 * `start + i / rate`, whether or not earlier requests have been answered, and
 * its latency is measured from that intended time. A closed loop (each worker
 * waits for an answer before sending again) asks a slow system less, so its
 * queueing never shows in the percentiles ("coordinated omission"); here, if
 * the system or this sender falls behind, the requests due meanwhile are sent
 * at once on catching up and their wait counts.
 *
 * Bounded: at most `count` requests, none intended after `durationMs`; a
 * request that would exceed `maxInFlight` is not sent and is counted as shed.
 * Resolves once every request sent has settled (each send must bound itself,
 * e.g. with a call deadline; the caller's stop signal ends the sending).
 */
export interface OpenLoopPlan {
  /** Arrivals per second. */
  readonly ratePerSecond: number;
  /** Most requests to send. */
  readonly count: number;
  /** No request is intended later than this after the start, ms. */
  readonly durationMs: number;
  /** Requests in flight at most; an arrival beyond it is shed (counted, not sent, not delayed). */
  readonly maxInFlight: number;
}

/** Time in ms on a monotonic clock (performance.now() in the real thing). */
export interface Clock {
  now(): number;
  /** Resolves at `at` or later. */
  sleepUntil(at: number): Promise<void>;
}

export interface Arrival {
  readonly index: number;
  /** When the request was meant to be sent, on the clock: latencies are measured from here. */
  readonly intendedAt: number;
}

export interface OpenLoopResult {
  /** Requests intended: min(count, arrivals that fit in the duration). */
  readonly planned: number;
  readonly sent: number;
  /** Arrivals not sent because maxInFlight requests were already in flight. */
  readonly shed: number;
  readonly succeeded: number;
  readonly failed: number;
  /** Completion minus intended send time of each request that succeeded, ms, ascending. */
  readonly latenciesMs: readonly number[];
  /** The largest actual-minus-intended send time, ms: how far the sender itself fell behind. */
  readonly maxSendLagMs: number;
  /** Requests sent per second over the send window (start to the later of the last send and the last intended time). */
  readonly achievedRate: number;
  /** From the start to the last request settled, ms. */
  readonly elapsedMs: number;
}

/** How many requests a plan intends. */
export function plannedCount(plan: OpenLoopPlan): number {
  const fitting = Math.ceil((plan.durationMs * plan.ratePerSecond) / 1000);
  return Math.max(0, Math.min(plan.count, fitting));
}

export async function runOpenLoop(plan: OpenLoopPlan, clock: Clock, send: (arrival: Arrival) => Promise<void>, stop?: AbortSignal): Promise<OpenLoopResult> {
  const planned = plannedCount(plan);
  const intervalMs = 1000 / plan.ratePerSecond;
  const start = clock.now();
  const intendedAt = (index: number): number => start + index * intervalMs;
  const latencies: number[] = [];
  const pending = new Set<Promise<void>>();
  let sent = 0;
  let shed = 0;
  let succeeded = 0;
  let failed = 0;
  let maxSendLagMs = 0;
  let lastSendAt = start;

  const fire = (arrival: Arrival): void => {
    if (pending.size >= plan.maxInFlight) {
      shed++;
      return;
    }
    sent++;
    const now = clock.now();
    lastSendAt = now;
    maxSendLagMs = Math.max(maxSendLagMs, now - arrival.intendedAt);
    const settled: Promise<void> = send(arrival).then(
      () => {
        succeeded++;
        latencies.push(clock.now() - arrival.intendedAt);
      },
      () => {
        failed++;
      },
    );
    pending.add(settled);
    void settled.finally(() => pending.delete(settled));
  };

  let next = 0;
  while (next < planned && !stop?.aborted) {
    await clock.sleepUntil(intendedAt(next));
    // Everything due by now goes out now, however late: a stalled sender must not thin the arrivals.
    const now = clock.now();
    while (next < planned && intendedAt(next) <= now && !stop?.aborted) {
      fire({ index: next, intendedAt: intendedAt(next) });
      next++;
    }
  }
  const windowMs = Math.max(lastSendAt, intendedAt(Math.max(0, next - 1))) - start + intervalMs;
  while (pending.size > 0) await Promise.all(pending);
  return {
    planned,
    sent,
    shed,
    succeeded,
    failed,
    latenciesMs: latencies.sort((a, b) => a - b),
    maxSendLagMs,
    achievedRate: next === 0 ? 0 : (sent * 1000) / windowMs,
    elapsedMs: clock.now() - start,
  };
}

/** The real clock: performance.now() and setTimeout. */
export const realClock: Clock = {
  now: () => performance.now(),
  sleepUntil: (at) => new Promise((resolve) => setTimeout(resolve, Math.max(0, at - performance.now()))),
};

/** Nearest-rank percentile (p in 0..100) of ascending values; NaN when empty. */
export function percentileOf(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}
