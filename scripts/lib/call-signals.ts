/**
 * An abort signal per call, all tied to one stop signal through a single
 * listener.
 *
 * Handing one long-lived signal to every call leaks: connect-es links the
 * signal it is given to the call's own controller with an "abort" listener
 * that it removes only when a signal aborts, never when the call simply ends.
 * Over a load run the stop signal gathered one listener per call ever made
 * (hence node's `MaxListenersExceededWarning: 11 abort listeners added to
 * [AbortSignal]`) and kept every finished call reachable. Here each call gets
 * a controller of its own, forgotten when the call settles, and the stop
 * signal has one listener that aborts the calls still live.
 */
export interface CallSignals {
  /** Runs `work` with a signal of its own, aborted when the stop signal is (already aborted if it is). */
  run<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T>;
  /** Calls started and not yet settled. */
  readonly live: number;
}

export function createCallSignals(stop: AbortSignal): CallSignals {
  const live = new Set<AbortController>();
  stop.addEventListener(
    "abort",
    () => {
      for (const controller of live) controller.abort(stop.reason);
      live.clear();
    },
    { once: true },
  );
  return {
    async run(work) {
      const controller = new AbortController();
      if (stop.aborted) controller.abort(stop.reason);
      else live.add(controller);
      try {
        return await work(controller.signal);
      } finally {
        live.delete(controller);
      }
    },
    get live() {
      return live.size;
    },
  };
}
