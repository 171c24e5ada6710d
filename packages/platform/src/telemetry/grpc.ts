/**
 * Spans and RED metrics of gRPC calls on grpc-js: a server span per call
 * served (continuing the caller's W3C traceparent from the metadata), and a
 * client interceptor that times each outgoing call, makes its client span and
 * puts that span's traceparent into the call's metadata.
 */
import { context, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type SpanOptions, type Tracer } from "@opentelemetry/api";
import { InterceptingCall, type Interceptor, type StatusObject } from "@grpc/grpc-js";
import { Code } from "../rpc-errors.js";
import type { RpcRecorder } from "./metrics.js";
import { extractFromHeaders, injectIntoMetadata } from "./tracing.js";

/** What a server span marks as failed: the server's fault, not the caller's (OpenTelemetry's rule for gRPC servers). */
const SERVER_FAULTS: ReadonlySet<Code> = new Set([Code.UNKNOWN, Code.DEADLINE_EXCEEDED, Code.UNIMPLEMENTED, Code.INTERNAL, Code.UNAVAILABLE, Code.DATA_LOSS]);

export interface ServerSpan {
  /** The context to run the handler in: downstream calls and log lines join this span. */
  readonly context: Context;
  end(code: Code, message?: string): void;
}

/**
 * A server span for one call, continuing the caller's traceparent from its
 * metadata (grpc-js Metadata, or fetch Headers at the edge).
 */
export function startServerSpan(tracer: Tracer, service: string, method: string, headers: { get(key: string): unknown }, system: "grpc" | "connect_rpc" = "grpc"): ServerSpan {
  return serverSpanStarter(tracer, service, method, system)(headers);
}

/**
 * startServerSpan for one method: its span name, start options and rpc.*
 * attributes (the same on every call) are built once, not per call.
 *
 * The attributes are set on the started span rather than given to
 * startSpan: the SDK checks attributes given at start twice (before and
 * after sampling), each check of a value allocating a WeakSet, and once when
 * set. The sampler, the provider's default parent-based always-on
 * (tracing.ts names none), does not read them.
 */
export function serverSpanStarter(tracer: Tracer, service: string, method: string, system: "grpc" | "connect_rpc" = "grpc"): (headers: { get(key: string): unknown }) => ServerSpan {
  const name = `${service}/${method}`;
  const options: SpanOptions = { kind: SpanKind.SERVER };
  const attributes: Attributes = Object.freeze({ "rpc.system": system, "rpc.service": service, "rpc.method": method });
  return (headers) => {
    const parent = extractFromHeaders(headers);
    const span = tracer.startSpan(name, options, parent).setAttributes(attributes);
    return {
      context: trace.setSpan(parent, span),
      end(code, message) {
        span.setAttribute("rpc.grpc.status_code", code);
        if (SERVER_FAULTS.has(code)) span.setStatus({ code: SpanStatusCode.ERROR, ...(message ? { message } : {}) });
        span.end();
      },
    };
  };
}

/** Runs `work` with `span`'s context active (just runs it without a span). */
export function inServerSpan<T>(span: ServerSpan | undefined, work: () => T): T {
  return span ? context.with(span.context, work) : work();
}

/** "/shop.catalog.v1.CatalogService/GetProduct" as its service and method. */
function splitPath(path: string): { service: string; method: string } {
  const slash = path.lastIndexOf("/");
  return { service: path.slice(1, slash), method: path.slice(slash + 1) };
}

/**
 * A grpc-js client interceptor: one client span per call attempt (a retried
 * call shows each attempt), the W3C traceparent in its metadata, and the
 * call's duration and status code recorded for `downstream`. Without a
 * tracer it only times the call.
 */
export function createClientInterceptor(tracer: Tracer | undefined, record: RpcRecorder): Interceptor {
  const names = new Map<string, { service: string; method: string }>();
  return (options, nextCall) => {
    const path = options.method_definition.path;
    let name = names.get(path);
    if (!name) {
      name = splitPath(path);
      names.set(path, name);
    }
    const { service, method } = name;
    const started = performance.now();
    // The interceptor runs synchronously inside the caller's makeUnaryRequest:
    // the active context here is the caller's.
    let span: Span | undefined;
    let spanContext: Context | undefined;
    if (tracer) {
      const parent = context.active();
      span = tracer.startSpan(`${service}/${method}`, { kind: SpanKind.CLIENT, attributes: { "rpc.system": "grpc", "rpc.service": service, "rpc.method": method } }, parent);
      spanContext = trace.setSpan(parent, span);
    }
    return new InterceptingCall(nextCall(options), {
      start(metadata, _listener, next) {
        if (spanContext) injectIntoMetadata(metadata, spanContext);
        next(metadata, {
          onReceiveStatus(status: StatusObject, nextStatus: (status: StatusObject) => void) {
            record(service, method, status.code as Code, (performance.now() - started) / 1000);
            if (span) {
              span.setAttribute("rpc.grpc.status_code", status.code);
              if (status.code !== Code.OK) span.setStatus({ code: SpanStatusCode.ERROR, message: status.details });
              span.end();
            }
            nextStatus(status);
          },
        });
      },
    });
  };
}
