import { context, SpanStatusCode, trace, type Attributes, type Context, type SpanKind, type Tracer } from "@opentelemetry/api";

export interface SpanOptions {
  readonly kind?: SpanKind;
  readonly attributes?: Attributes;
  /** The parent; default the active context. */
  readonly parent?: Context;
}

/**
 * Runs `work` inside a new span (active for everything it calls) and ends the
 * span when the work settles, marking it failed when the work throws.
 * Without a tracer it just runs the work.
 */
export async function inSpan<T>(tracer: Tracer | undefined, name: string, options: SpanOptions, work: () => Promise<T>): Promise<T> {
  if (!tracer) return work();
  const parent = options.parent ?? context.active();
  const span = tracer.startSpan(name, { ...(options.kind === undefined ? {} : { kind: options.kind }), ...(options.attributes ? { attributes: options.attributes } : {}) }, parent);
  try {
    return await context.with(trace.setSpan(parent, span), work);
  } catch (error) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    throw error;
  } finally {
    span.end();
  }
}
