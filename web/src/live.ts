/**
 * Follows a server stream for as long as a component shows it, and
 * reconnects after a transient failure (the gateway restarting, a network
 * blip) with a growing pause. connect-query covers unary calls; streams are
 * consumed with the plain Connect client here.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { useEffect, useState } from "react";

export type LiveState = "connecting" | "live" | "reconnecting" | "ended" | "failed";

export interface LiveOptions<T> {
  /** Opens the stream; called again on every reconnect. */
  readonly open: (signal: AbortSignal) => AsyncIterable<T>;
  readonly onMessage: (message: T) => void;
  /** True when the stream ended as it should (nothing to reconnect for). */
  readonly done?: () => boolean;
  /** Errors that are final, not transient (an expired session). */
  readonly onError?: (error: ConnectError) => void;
  readonly enabled?: boolean;
}

const TRANSIENT = new Set([Code.Unavailable, Code.DeadlineExceeded, Code.Unknown, Code.Internal, Code.ResourceExhausted, Code.Aborted]);

export function useLiveStream<T>(options: LiveOptions<T>, deps: readonly unknown[]): LiveState {
  const [state, setState] = useState<LiveState>("connecting");
  const enabled = options.enabled ?? true;
  // biome-ignore lint/correctness/useExhaustiveDependencies: the caller's `deps` say when the stream restarts; `options` is a new object on every render.
  useEffect(() => {
    if (!enabled) return;
    const stop = new AbortController();
    let pauseMs = 500;
    void (async () => {
      while (!stop.signal.aborted) {
        try {
          let first = true;
          for await (const message of options.open(stop.signal)) {
            if (first) setState("live");
            first = false;
            pauseMs = 500;
            options.onMessage(message);
          }
          if (options.done?.() ?? true) {
            setState("ended");
            return;
          }
        } catch (error) {
          if (stop.signal.aborted) return;
          const connectError = ConnectError.from(error);
          if (!TRANSIENT.has(connectError.code)) {
            setState("failed");
            options.onError?.(connectError);
            return;
          }
        }
        setState("reconnecting");
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
        pauseMs = Math.min(pauseMs * 2, 10_000);
      }
    })();
    return () => stop.abort();
    // The caller lists what the stream depends on; `options` is a new object every render.
  }, [enabled, ...deps]);
  return state;
}
