/**
 * Client-side load balancing over the instances discovery reports: round
 * robin, skipping instances ejected after failures in a row (outlier
 * ejection), each ejection twice as long as the one before, up to a cap.
 * When every instance is ejected, all of them are tried again rather than
 * none (a fully ejected pool is more likely a shared cause than N dead hosts).
 * A retry goes to an instance that has not failed that call yet, when one is
 * in rotation: with the round-robin cursor shared by concurrent calls, a
 * retry could otherwise land on the instance it just failed on (an ejection
 * lapses while the instance is still down, so that is not rare).
 *
 * Hand-written because grpc-js' outlier detection works only inside a single
 * channel fed by its own resolver, while our pool picks across discovery's
 * instances per call, so that a retry can go to another instance.
 */
export interface BalancerSettings {
  readonly consecutiveFailures: number;
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
}

export interface InstanceStats {
  readonly address: string;
  /** Ejected until this time (epoch ms); 0 when in rotation. */
  readonly ejectedUntil: number;
  /** Median and 99th percentile of the last calls' durations, ms (0 with no calls yet). */
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
}

export interface InstanceBalancer {
  /** The next address to call among `addresses` (never empty), preferring one not in `failed` (those this call failed on). */
  pick(addresses: readonly string[], failed?: readonly string[]): string;
  /** Reports one call's outcome: `failed` only for failures that say something about the instance. */
  record(address: string, durationMs: number, failed: boolean): void;
  /** Forgets instances that are gone. */
  retain(addresses: ReadonlySet<string>): void;
  stats(address: string): InstanceStats;
}

const LATENCY_SAMPLES = 128;

interface State {
  failuresInRow: number;
  ejections: number;
  ejectedUntil: number;
  readonly durations: number[];
  next: number;
}

export function createInstanceBalancer(settings: () => BalancerSettings, now: () => number = Date.now): InstanceBalancer {
  const states = new Map<string, State>();
  let cursor = 0;
  const stateOf = (address: string): State => {
    let state = states.get(address);
    if (!state) {
      state = { failuresInRow: 0, ejections: 0, ejectedUntil: 0, durations: [], next: 0 };
      states.set(address, state);
    }
    return state;
  };
  const percentile = (sorted: readonly number[], p: number): number => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!);

  return {
    pick(addresses, failed) {
      const at = now();
      const inRotation = addresses.filter((address) => (states.get(address)?.ejectedUntil ?? 0) <= at);
      let from = inRotation.length > 0 ? inRotation : addresses;
      if (failed !== undefined) {
        const untried = from.filter((address) => !failed.includes(address));
        if (untried.length > 0) from = untried;
      }
      return from[cursor++ % from.length]!;
    },
    record(address, durationMs, failed) {
      const state = stateOf(address);
      if (state.durations.length < LATENCY_SAMPLES) state.durations.push(durationMs);
      else state.durations[state.next] = durationMs;
      state.next = (state.next + 1) % LATENCY_SAMPLES;
      if (!failed) {
        state.failuresInRow = 0;
        // A good answer after an ejection: the next ejection starts short again.
        if (state.ejectedUntil <= now()) state.ejections = 0;
        return;
      }
      state.failuresInRow += 1;
      const { consecutiveFailures, baseEjectionMs, maxEjectionMs } = settings();
      if (state.failuresInRow >= consecutiveFailures && state.ejectedUntil <= now()) {
        state.ejectedUntil = now() + Math.min(maxEjectionMs, baseEjectionMs * 2 ** state.ejections);
        state.ejections += 1;
        state.failuresInRow = 0;
      }
    },
    retain(addresses) {
      for (const address of states.keys()) if (!addresses.has(address)) states.delete(address);
    },
    stats(address) {
      const state = states.get(address);
      const sorted = [...(state?.durations ?? [])].sort((a, b) => a - b);
      return {
        address,
        ejectedUntil: state && state.ejectedUntil > now() ? state.ejectedUntil : 0,
        latencyP50Ms: percentile(sorted, 0.5),
        latencyP99Ms: percentile(sorted, 0.99),
      };
    },
  };
}
