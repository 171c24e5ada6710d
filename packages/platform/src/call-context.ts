import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import type { Metadata } from "@grpc/grpc-js";
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
 */
const currentCallStorage = new AsyncLocalStorage<CallContext>();

export function currentCall(): CallContext | undefined {
  return currentCallStorage.getStore();
}

export function runInCall<T>(context: CallContext, fn: () => T): T {
  return currentCallStorage.run(context, fn);
}

const WELL_FORMED_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Keeps a caller's request id when it is well-formed; makes a new one otherwise. */
export function acceptRequestId(value: unknown): string {
  return typeof value === "string" && WELL_FORMED_REQUEST_ID.test(value) ? value : randomUUID();
}
