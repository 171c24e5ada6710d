import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import type { Metadata } from "@grpc/grpc-js";
import { context as otelContext, createContextKey, type Context } from "@opentelemetry/api";
// From pino itself, not ./logger.js: logger.ts imports telemetry/log-context.ts, which imports this file.
import type { Logger } from "pino";

export const REQUEST_ID_HEADER = "x-request-id";

/** What a handler knows about the call it serves. */
export interface CallContext {
  /** Full service name, e.g. "shop.catalog.v1.CatalogService". */
  readonly service: string;
  /** Method name, e.g. "GetProduct". */
  readonly method: string;
  /** The caller's request id when well-formed, otherwise a new one. */
  readonly requestId: string;
  /** Request metadata as received. */
  readonly metadata: Metadata;
  /** Absolute deadline in epoch milliseconds, or undefined when the caller set none. */
  readonly deadline: number | undefined;
  /** Milliseconds left before the deadline (never negative), or undefined when none. */
  timeoutMs(): number | undefined;
  /** Aborted when the caller cancels or the deadline passes. */
  readonly signal: AbortSignal;
  /** Logger bound to this call (request id, method). */
  readonly log: Logger;
  /** Remote address of the caller. */
  readonly peer: string;
}

/**
 * The call being served on this async path. Clients read it to propagate the
 * deadline and request id to downstream calls without every handler having to
 * pass its context along (a forgotten hand-off would silently drop them).
 *
 * Carrying it costs: on Node 20 the first AsyncLocalStorage scope entered
 * turns on async-hooks promise hooks for the whole process, and every promise
 * and native callback pays for them from then on. So a call's scope is
 * entered only when something in the process can read it (see
 * wantCallScope), and with tracing on it rides in the OpenTelemetry context
 * the handler runs in anyway (CALL_CONTEXT_KEY) instead of a second storage.
 */
const currentCallStorage = new AsyncLocalStorage<CallContext>();

/** Where the call rides inside an OpenTelemetry context (the server span's, when tracing is on). */
export const CALL_CONTEXT_KEY = createContextKey("meshwork call context");

let callScopeWanted = false;

/**
 * Handlers served from now on run inside their call scope. Every platform
 * client says so when it is made (its calls inherit the deadline and request
 * id from the scope); a process that calls nobody downstream never pays for
 * a scope that nothing would read. Log lines of the call's own logger
 * (context.log) carry its request id either way.
 */
export function wantCallScope(): void {
  callScopeWanted = true;
}

export function currentCall(): CallContext | undefined {
  return currentCallStorage.getStore() ?? (otelContext.active().getValue(CALL_CONTEXT_KEY) as CallContext | undefined);
}

/** Runs `fn(...args)` inside `context`'s call scope, when any is wanted (wantCallScope). */
export function runInCall<A extends unknown[], T>(context: CallContext, fn: (...args: A) => T, ...args: A): T {
  return callScopeWanted ? currentCallStorage.run(context, fn, ...args) : fn(...args);
}

/** `parent` (an OpenTelemetry context) with `call` in it: what currentCall() reads when it is active. */
export function withCall(parent: Context, call: CallContext): Context {
  return parent.setValue(CALL_CONTEXT_KEY, call);
}

const WELL_FORMED_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Keeps a caller's request id when it is well-formed; makes a new one otherwise. */
export function acceptRequestId(value: unknown): string {
  return typeof value === "string" && WELL_FORMED_REQUEST_ID.test(value) ? value : randomUUID();
}
