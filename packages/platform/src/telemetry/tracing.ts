/**
 * Tracing with OpenTelemetry, set up explicitly (no require hooks: the code
 * is ESM run by tsx, and each instrumented spot is one we chose and can see).
 *
 * One TracerProvider per service, carrying that service's `service.name` as
 * its resource: in the all-in-one mode six services share a process, and a
 * span must still say which of them made it (a resource attribute is what
 * every backend groups by). The context manager and the W3C propagator are
 * process-wide by nature (there is one async context per process); they are
 * installed once, the first time any service turns tracing on.
 *
 * Off (OTEL_TRACES_EXPORTER=none, the default) means `tracer` is undefined:
 * instrumented code checks that and does nothing, so no span objects are
 * made and no context is propagated beyond what was already there.
 */
import { context, diag, DiagLogLevel, ROOT_CONTEXT, trace, type Context, type TextMapGetter, type TextMapSetter, type Tracer } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { setGlobalErrorHandler, W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter as OTLPJsonTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter as OTLPProtobufTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
  type SpanExporter,
} from "@opentelemetry/sdk-trace";
import type { Logger } from "pino";

export type TracesExporterName = "none" | "otlp" | "console";
export const TRACES_EXPORTERS: readonly TracesExporterName[] = ["none", "otlp", "console"];

/**
 * OTEL_EXPORTER_OTLP_PROTOCOL's values this platform sends: protobuf, the
 * specification's default, or JSON. Protobuf costs a third of the CPU per
 * span and 40% of the bytes (measured here with the SDK's serializers on a
 * server span: 2.5 against 6.3–7.4 µs, 247 against 636 bytes).
 */
export const OTLP_PROTOCOLS = ["http/protobuf", "http/json"] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

/**
 * The sampler names of OpenTelemetry's OTEL_TRACES_SAMPLER. The SDK (3.x)
 * no longer reads that variable itself, so the platform does: without it a
 * service with tracing on records and exports every call, which no
 * production deployment wants at any real rate.
 */
export const TRACES_SAMPLERS = ["parentbased_always_on", "parentbased_traceidratio", "parentbased_always_off", "traceidratio", "always_on", "always_off"] as const;
export type TracesSamplerName = (typeof TRACES_SAMPLERS)[number];

/**
 * The sampler `name` stands for, `ratio` (0 to 1) being OTEL_TRACES_SAMPLER_ARG
 * for the two ratio samplers. "parentbased_*" follow the caller's decision
 * (its traceparent's sampled flag) and apply the named rule only to traces
 * this service starts: a trace is then recorded whole or not at all.
 */
export function createSampler(name: TracesSamplerName, ratio = 1): Sampler {
  if (!(ratio >= 0 && ratio <= 1)) throw new RangeError(`a sampling ratio is from 0 to 1, not ${ratio}`);
  switch (name) {
    case "always_on":
      return new AlwaysOnSampler();
    case "always_off":
      return new AlwaysOffSampler();
    case "traceidratio":
      return new TraceIdRatioBasedSampler(ratio);
    case "parentbased_always_on":
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
  }
}

export interface TracingOptions {
  /** `service.name` of every span this provider makes. */
  readonly serviceName: string;
  /** A standard exporter by name, or one given by a test or benchmark (in memory, no-op). */
  readonly exporter: TracesExporterName | SpanExporter;
  /** OTLP/HTTP base URL, e.g. http://jaeger:4318 (spans go to <base>/v1/traces). */
  readonly otlpEndpoint?: string;
  /** How spans go to it (OTEL_EXPORTER_OTLP_PROTOCOL; default http/protobuf). */
  readonly otlpProtocol?: OtlpProtocol;
  /** Batch delay before spans are exported, ms (OTEL_BSP_SCHEDULE_DELAY; default 5000). */
  readonly scheduleDelayMs?: number;
  /** Which spans are recorded (OTEL_TRACES_SAMPLER; default parentbased_always_on, the specification's). */
  readonly sampler?: TracesSamplerName;
  /** The ratio of the ratio samplers, 0 to 1 (OTEL_TRACES_SAMPLER_ARG; default 1). */
  readonly samplerRatio?: number;
  /** Where OpenTelemetry's own warnings and errors go (routeDiagnostics); nowhere when omitted. */
  readonly log?: Logger;
}

export interface Tracing {
  /** Undefined when tracing is off: instrumented code then skips every span. */
  readonly tracer: Tracer | undefined;
  /** Exports the spans ended so far. */
  forceFlush(): Promise<void>;
  /** Exports what is left and stops. */
  shutdown(): Promise<void>;
}

const TRACER_NAME = "@meshwork/platform";

let contextManagerInstalled = false;

/** The process-wide async context, installed once (a second service in the process reuses it). */
function installContextManager(): void {
  if (contextManagerInstalled) return;
  contextManagerInstalled = true;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
}

/** The logger OpenTelemetry's diagnostics go to: the last service that turned tracing on with one. */
let diagnostics: Logger | undefined;
let diagnosticsRouted = false;

/**
 * Sends OpenTelemetry's own warnings and errors to `log` (tagged component
 * "opentelemetry"): a batch the collector refused or never took, spans
 * dropped because the export queue was full. The SDK reports them through
 * its process-wide error handler and diag logger, which say nothing until
 * one is set, so an unreachable collector lost every span without a word. Process-wide like
 * diag itself: in the all-in-one mode the lines carry the name of the last
 * service that turned tracing on (the six share one OTLP endpoint).
 */
function routeDiagnostics(log: Logger): void {
  diagnostics = log.child({ component: "opentelemetry" });
  if (diagnosticsRouted) return;
  diagnosticsRouted = true;
  const write =
    (level: "error" | "warn") =>
    (message: string, ...args: unknown[]): void =>
      diagnostics?.[level](args.length > 0 ? { details: args.map(String) } : {}, message);
  const skip = (): void => undefined;
  // The error itself (a failed export, with the collector's status), not the SDK's string of it.
  setGlobalErrorHandler((error) => diagnostics?.error({ err: error }, `OpenTelemetry: ${error instanceof Error ? error.message : String(error)}`));
  diag.setLogger({ error: write("error"), warn: write("warn"), info: skip, debug: skip, verbose: skip }, { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
}

export function createTracing(options: TracingOptions): Tracing {
  if (options.exporter === "none") {
    return { tracer: undefined, forceFlush: async () => undefined, shutdown: async () => undefined };
  }
  const url = `${(options.otlpEndpoint ?? "http://127.0.0.1:4318").replace(/\/+$/, "")}/v1/traces`;
  const exporter: SpanExporter =
    options.exporter === "otlp"
      ? options.otlpProtocol === "http/json"
        ? new OTLPJsonTraceExporter({ url })
        : new OTLPProtobufTraceExporter({ url })
      : options.exporter === "console"
        ? new ConsoleSpanExporter()
        : options.exporter;
  const sampler = createSampler(options.sampler ?? "parentbased_always_on", options.samplerRatio);
  installContextManager();
  if (options.log) routeDiagnostics(options.log);
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ "service.name": options.serviceName }),
    sampler,
    spanProcessors: [new BatchSpanProcessor({ exporter, ...(options.scheduleDelayMs === undefined ? {} : { scheduledDelayMillis: options.scheduleDelayMs }) })],
  });
  return {
    tracer: provider.getTracer(TRACER_NAME),
    forceFlush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

// The W3C trace-context format (traceparent, tracestate), used directly rather
// than through a global propagator: every carrier here is ours.
const w3c = new W3CTraceContextPropagator();

type Carrier = Record<string, unknown>;

const recordGetter: TextMapGetter<Carrier> = {
  get: (carrier, key) => {
    const value = carrier[key];
    return typeof value === "string" ? value : undefined;
  },
  keys: (carrier) => Object.keys(carrier),
};

const recordSetter: TextMapSetter<Record<string, string | number>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

/** The trace context in a plain header record (message headers, a stored JSON column). */
export function extractTraceContext(headers: Readonly<Record<string, unknown>> | undefined): Context {
  if (!headers) return ROOT_CONTEXT;
  return w3c.extract(ROOT_CONTEXT, headers as Carrier, recordGetter);
}

/** Writes `traceparent` (and `tracestate`) of `from` into `headers`; nothing when no span is in it. */
export function injectTraceContext(headers: Record<string, string | number>, from: Context = context.active()): void {
  if (trace.getSpan(from) === undefined) return;
  w3c.inject(from, headers, recordSetter);
}

/** The active trace context as headers ({} when none): what an outbox row or a saga stores. */
export function currentTraceHeaders(): Record<string, string> {
  const headers: Record<string, string | number> = {};
  injectTraceContext(headers);
  return headers as Record<string, string>;
}

/** Header-style getter for grpc-js Metadata and fetch Headers. */
export const metadataGetter: TextMapGetter<{ get(key: string): unknown }> = {
  get: (carrier, key) => {
    const value = carrier.get(key);
    if (Array.isArray(value)) return typeof value[0] === "string" ? value[0] : undefined;
    return typeof value === "string" ? value : undefined;
  },
  keys: () => ["traceparent", "tracestate"],
};

export function extractFromHeaders(carrier: { get(key: string): unknown }): Context {
  return w3c.extract(ROOT_CONTEXT, carrier, metadataGetter);
}

export function injectIntoMetadata(carrier: { set(key: string, value: string): void }, from: Context = context.active()): void {
  if (trace.getSpan(from) === undefined) return;
  w3c.inject(from, carrier, { set: (target, key, value) => target.set(key, value) });
}
