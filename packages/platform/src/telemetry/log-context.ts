/**
 * What ties a log line to the request and trace it belongs to: pino's mixin
 * adds trace_id and span_id of the active span (when tracing is on) and the
 * request id — of the gRPC call being served (call-context.ts), or of the work
 * run under runWithRequestId (a gateway request, a saga step, a queued message).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { context, trace } from "@opentelemetry/api";
import { currentCall } from "../call-context.js";

const requestScope = new AsyncLocalStorage<string>();

/** Runs `fn` with `requestId` on every log line it writes (unless a gRPC call inside has its own). */
export function runWithRequestId<T>(requestId: string | undefined, fn: () => T): T {
  return requestId ? requestScope.run(requestId, fn) : fn();
}

/** The request id of the work on this async path, if any. */
export function currentRequestId(): string | undefined {
  return currentCall()?.requestId ?? requestScope.getStore();
}

/**
 * Marks a call's own logger (context.log) with its request id, so that its
 * lines carry it wherever they are written, in the call's scope or not (a
 * call runs in a scope only when something in the process reads it:
 * call-context.ts).
 */
export const LOGGER_REQUEST_ID: unique symbol = Symbol("meshwork logger request id");

/** A logger that may carry a request id of its own (LOGGER_REQUEST_ID). */
interface MaybeCallLogger {
  readonly [LOGGER_REQUEST_ID]?: string;
}

/** pino mixin: trace_id, span_id, request_id of the current async context (request_id of the call whose logger writes, first). */
export function logCorrelation(_fields?: object, _level?: number, logger?: object): Record<string, string> {
  const fields: Record<string, string> = {};
  const span = trace.getSpan(context.active());
  if (span) {
    const { traceId, spanId } = span.spanContext();
    fields.trace_id = traceId;
    fields.span_id = spanId;
  }
  const requestId = (logger as MaybeCallLogger | undefined)?.[LOGGER_REQUEST_ID] ?? currentRequestId();
  if (requestId) fields.request_id = requestId;
  return fields;
}
