import { Metadata } from "@grpc/grpc-js";
import type { CallContext } from "@meshwork/platform";
import { createSilentLogger } from "@meshwork/platform";

/**
 * A CallContext for calling handlers directly in RPC tests, without a
 * network. Headers become request metadata.
 */
export function createTestCallContext(options: { headers?: Record<string, string>; timeoutMs?: number; signal?: AbortSignal } = {}): CallContext {
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(options.headers ?? {})) metadata.set(key, value);
  const deadline = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs;
  return {
    service: "test",
    method: "test",
    requestId: "test-request",
    metadata,
    deadline,
    timeoutMs: () => (deadline === undefined ? undefined : Math.max(0, deadline - Date.now())),
    signal: options.signal ?? new AbortController().signal,
    log: createSilentLogger(),
    peer: "test",
  };
}
