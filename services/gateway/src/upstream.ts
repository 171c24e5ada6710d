/**
 * From a Connect call at the edge to a grpc-js call to a backend, and back:
 * what travels down (request id, the caller's token where the backend checks
 * it again, the remaining deadline, cancellation) and how a backend's status
 * comes back up (same code, the field trailer kept, the message where it is
 * meant for the caller).
 */
import { Code, ConnectError, type ContextValues, type HandlerContext } from "@connectrpc/connect";
import { CLIENT_ADDRESS_HEADER, INVALID_FIELD_TRAILER, isRpcError, REQUEST_ID_HEADER, type CallOptions, type Logger } from "@meshwork/platform";
import { clientAddressKey, requestIdKey } from "./edge-context.js";
import { genericMessage, isMeaningful } from "./public-errors.js";

export const AUTHORIZATION_HEADER = "authorization";

/** Backend metadata a client may see. Anything else a backend sets stays inside the mesh. */
const FORWARDED_ERROR_METADATA = [INVALID_FIELD_TRAILER] as const;

export interface UpstreamOptions {
  /** Unary: the deadline when the caller set none or a longer one. Streams carry only the caller's. */
  readonly maxTimeoutMs: number;
  /** Pass the caller's `authorization` on: the backend verifies the token itself too. */
  readonly forwardAuthorization: boolean;
  /** Also cancels the call (the gateway ending its streams at shutdown). */
  readonly signal?: AbortSignal;
}

/** Options for the platform client's call that serves `ctx`. */
export function upstreamCallOptions(ctx: HandlerContext, kind: "unary" | "stream", options: UpstreamOptions): CallOptions {
  const headers = upstreamHeaders(ctx.values, options.forwardAuthorization ? ctx.requestHeader.get(AUTHORIZATION_HEADER) : null);
  const remaining = ctx.timeoutMs();
  const timeoutMs = kind === "unary" ? Math.min(remaining ?? Number.POSITIVE_INFINITY, options.maxTimeoutMs) : remaining;
  const signal = options.signal ? AbortSignal.any([ctx.signal, options.signal]) : ctx.signal;
  return {
    headers,
    signal,
    // The edge starts the chain: there is no platform call context to inherit from.
    parent: null,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  };
}

/**
 * The headers a backend call carries: the request id, the caller's address as
 * the gateway resolved it (trusted proxies only, for backends that throttle
 * per address), and the caller's `authorization` when given (routes whose
 * backend verifies the token again). A client's own header of the address's
 * name is never passed on: only the headers built here travel downstream.
 */
export function upstreamHeaders(values: ContextValues, authorization: string | null): Record<string, string> {
  const headers: Record<string, string> = { [REQUEST_ID_HEADER]: values.get(requestIdKey), [CLIENT_ADDRESS_HEADER]: values.get(clientAddressKey) };
  if (authorization !== null) headers[AUTHORIZATION_HEADER] = authorization;
  return headers;
}

/**
 * A backend's RpcError as the ConnectError the caller gets: the gRPC code
 * numbers are the same in both libraries. A status whose message is the
 * service's answer (NOT_FOUND "order X not found", INVALID_ARGUMENT naming a
 * field) keeps it; the others (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, ...)
 * carry what only operators should read ("No connection established. Last
 * error: connect ECONNREFUSED 10.0.0.5:50052"): the caller gets a generic
 * message with the request id, the detail is logged with it. Anything that is
 * not a status (a bug) becomes INTERNAL the same way.
 */
export function toConnectError(error: unknown, log: Logger, requestId: string): ConnectError {
  if (error instanceof ConnectError) return error;
  if (isRpcError(error)) {
    const code = error.code as number as Code;
    if (!isMeaningful(code)) {
      // A cancel is most often the caller's own (a closed stream): not worth a warning.
      const level = code === Code.Canceled ? "debug" : "warn";
      log[level]({ request_id: requestId, code: Code[code], detail: error.message }, "upstream error detail withheld from the caller");
      return new ConnectError(genericMessage(code, requestId), code);
    }
    const metadata = new Headers();
    for (const key of FORWARDED_ERROR_METADATA) {
      const value = error.metadata.get(key)[0];
      if (typeof value === "string") metadata.set(key, value);
    }
    return new ConnectError(error.message, code, metadata);
  }
  log.error({ err: error, request_id: requestId }, "gateway handler failed");
  return new ConnectError(genericMessage(Code.Internal, requestId), Code.Internal);
}
