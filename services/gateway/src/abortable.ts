import { Code, ConnectError } from "@connectrpc/connect";
import { untilAborted as untilAbortedBy } from "@meshwork/platform";

/** `promise`, or the signal's reason as soon as it aborts (a ConnectError, as the handler's signal carries). */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return untilAbortedBy(promise, signal, abortReason);
}

function abortReason(signal: AbortSignal): ConnectError {
  // Connect aborts the handler's signal with a ConnectError (DEADLINE_EXCEEDED, CANCELED).
  return signal.reason instanceof ConnectError ? signal.reason : new ConnectError("call cancelled", Code.Canceled);
}

/** Resolves after `ms` or as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = Number.isFinite(ms) ? setTimeout(done, ms) : undefined;
    signal.addEventListener("abort", done, { once: true });
  });
}
