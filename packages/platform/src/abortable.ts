/**
 * `promise`, unless `signal` aborts first: then the caller stops waiting
 * (rejected with `reason(signal)`, the signal's own reason by default) and
 * the work itself goes on. For callers that must not wait on shared or
 * queued work past their own deadline or cancellation.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal, reason: (signal: AbortSignal) => unknown = (aborted) => aborted.reason): Promise<T> {
  if (signal.aborted) {
    // The work still settles, and nobody waits for it any more: its rejection
    // must not go unhandled (Node ends the process on one). A call cancelled
    // before it met a full bulkhead crashed npm start under load this way.
    promise.catch(() => {});
    return Promise.reject(reason(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(reason(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}
