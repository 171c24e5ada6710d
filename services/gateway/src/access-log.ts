import { Code, ConnectError, type ContextValues, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "@meshwork/platform";
import { clientAddressKey, requestIdKey, userKey } from "./edge-context.js";

/**
 * One debug line per call that passed the edge checks: method, which path
 * served it (Connect, or the gRPC path of grpc-passthrough.ts), outcome,
 * time to the answer's headers, request id, caller. Nothing from the
 * messages or headers (tokens stay out of logs). Free when debug is off.
 */
export function createAccessLog(log: Logger): Interceptor {
  return (next) => async (request) => {
    if (!log.isLevelEnabled("debug")) return next(request);
    const started = performance.now();
    const rpc = `${request.service.name}.${request.method.name}`;
    try {
      const response = await next(request);
      logCall(log, { rpc, via: "connect", values: request.contextValues, started });
      return response;
    } catch (error) {
      logCall(log, { rpc, via: "connect", values: request.contextValues, started, code: ConnectError.from(error).code });
      throw error;
    }
  };
}

export interface CallRecord {
  /** "CatalogService.GetProduct". */
  readonly rpc: string;
  /** The path that served it: "connect", or "grpc-passthrough". */
  readonly via: "connect" | "grpc-passthrough";
  readonly values: ContextValues;
  /** performance.now() when the call arrived. */
  readonly started: number;
  /** The status, when it failed. */
  readonly code?: Code | undefined;
}

/** The access log's line for one call; the gRPC path (grpc-passthrough.ts) writes it too. */
export function logCall(log: Logger, call: CallRecord): void {
  if (!log.isLevelEnabled("debug")) return;
  const fields = {
    rpc: call.rpc,
    via: call.via,
    // Named as every service's lines name it (the logger's mixin does so
    // only inside a request scope, which the edge enters with tracing on only).
    request_id: call.values.get(requestIdKey),
    client: call.values.get(clientAddressKey),
    // The user id only: the email the token also carries stays out of logs.
    userId: call.values.get(userKey)?.userId,
    code: call.code === undefined ? "ok" : Code[call.code],
    ms: Math.round(performance.now() - call.started),
  };
  log.debug(fields, call.code === undefined ? "call answered" : "call failed");
}
