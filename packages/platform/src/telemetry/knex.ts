/**
 * Database spans from knex's own query events (no driver patching): a span
 * per statement, started on "query" in the caller's async context and ended
 * on "query-response" or "query-error". Only statements made inside a trace
 * get one: the relay's and the saga runner's idle polls, several a second,
 * would otherwise each start a trace of their own.
 */
import { context, SpanKind, SpanStatusCode, trace, type Span, type Tracer } from "@opentelemetry/api";
import type { Knex } from "knex";

interface QueryEvent {
  readonly __knexQueryUid?: string;
  readonly sql?: string;
  readonly method?: string;
}

export function traceKnex(db: Knex, tracer: Tracer, namespace: string): void {
  const open = new Map<string, Span>();
  db.on("query", (query: QueryEvent) => {
    const parent = context.active();
    if (query.__knexQueryUid === undefined || trace.getSpan(parent) === undefined) return;
    const operation = (query.method ?? "query").toLowerCase();
    const span = tracer.startSpan(
      `${operation} ${namespace}`,
      {
        kind: SpanKind.CLIENT,
        // The statement with its placeholders: values (which may be personal) are never recorded.
        attributes: { "db.system.name": "postgresql", "db.namespace": namespace, "db.operation.name": operation, ...(query.sql ? { "db.query.text": query.sql } : {}) },
      },
      parent,
    );
    open.set(query.__knexQueryUid, span);
  });
  const end = (query: QueryEvent, error?: unknown): void => {
    if (query.__knexQueryUid === undefined) return;
    const span = open.get(query.__knexQueryUid);
    if (!span) return;
    open.delete(query.__knexQueryUid);
    if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    span.end();
  };
  db.on("query-response", (_response: unknown, query: QueryEvent) => end(query));
  db.on("query-error", (error: unknown, query: QueryEvent) => end(query, error));
}
