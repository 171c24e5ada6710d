/**
 * A service's telemetry: its tracer (or none), its metrics registry, and the
 * pieces the platform's server, clients, database and messaging hook into.
 * Built once per service at its start-up (startService, startEdgeService),
 * from the settings in telemetrySettings().
 */
import type { Interceptor } from "@grpc/grpc-js";
import type { Tracer } from "@opentelemetry/api";
import type { SpanExporter } from "@opentelemetry/sdk-trace";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { z } from "zod";
import { settings } from "../config-schemas.js";
import { createClientInterceptor } from "./grpc.js";
import { createServiceMetrics, type BreakerGaugeState, type ServiceMetrics } from "./metrics.js";
import { createTracing, OTLP_PROTOCOLS, TRACES_EXPORTERS, TRACES_SAMPLERS, type OtlpProtocol, type TracesExporterName, type TracesSamplerName } from "./tracing.js";

export type { Tracer } from "@opentelemetry/api";
export * from "./collectors.js";
export * from "./grpc.js";
export * from "./knex.js";
export * from "./log-context.js";
export * from "./messaging.js";
export * from "./metrics.js";
export * from "./metrics-server.js";
export * from "./spans.js";
export * from "./tracing.js";

/** What a platform client needs to be observed: see ClientConfig.telemetry. */
export interface ClientTelemetry {
  /** The service called, e.g. "catalog": the `downstream` label. */
  readonly downstream: string;
  /** Times each call, makes its client span and carries the traceparent. */
  readonly interceptor: Interceptor;
  /** For the circuit breaker: report each state change (meshwork_client_circuit_breaker_state). */
  setBreakerState(state: BreakerGaugeState): void;
  /**
   * The service's registry, for further client metrics (retries, budget,
   * bulkhead queue). A name can be registered once per registry: create each
   * metric once, e.g. `registry.getSingleMetric(name) ?? new Counter({ ..., registers: [registry] })`,
   * and tell downstreams apart by a `downstream` label.
   */
  readonly registry: Registry;
}

export interface Telemetry {
  /** `service.name` of this service's spans. */
  readonly serviceName: string;
  /** Undefined when tracing is off. */
  readonly tracer: Tracer | undefined;
  readonly metrics: ServiceMetrics;
  /** The client-side hooks for calls to `downstream` (one per downstream, shared by its clients). */
  forClient(downstream: string): ClientTelemetry;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

export interface TelemetryOptions {
  /** The service ("catalog"): the metrics' `service` label, and `service.name` unless serviceName says otherwise. */
  readonly service: string;
  /** OTEL_SERVICE_NAME; empty means `service`. */
  readonly serviceName?: string;
  readonly tracesExporter: TracesExporterName | SpanExporter;
  readonly otlpEndpoint?: string;
  readonly otlpProtocol?: OtlpProtocol;
  readonly scheduleDelayMs?: number;
  readonly sampler?: TracesSamplerName;
  readonly samplerRatio?: number;
  /** Node process metrics in this registry (default true). */
  readonly processMetrics?: boolean;
  /** The service's logger: OpenTelemetry's own warnings and errors (a failed export) go to it. */
  readonly log?: Logger;
}

export function createTelemetry(options: TelemetryOptions): Telemetry {
  const serviceName = options.serviceName || options.service;
  const tracing = createTracing({
    serviceName,
    exporter: options.tracesExporter,
    ...(options.otlpEndpoint ? { otlpEndpoint: options.otlpEndpoint } : {}),
    ...(options.otlpProtocol ? { otlpProtocol: options.otlpProtocol } : {}),
    ...(options.scheduleDelayMs === undefined ? {} : { scheduleDelayMs: options.scheduleDelayMs }),
    ...(options.sampler === undefined ? {} : { sampler: options.sampler }),
    ...(options.samplerRatio === undefined ? {} : { samplerRatio: options.samplerRatio }),
    ...(options.log ? { log: options.log } : {}),
  });
  const metrics = createServiceMetrics({ service: options.service, ...(options.processMetrics === undefined ? {} : { processMetrics: options.processMetrics }) });
  const clients = new Map<string, ClientTelemetry>();
  return {
    serviceName,
    tracer: tracing.tracer,
    metrics,
    forClient(downstream) {
      let client = clients.get(downstream);
      if (!client) {
        client = {
          downstream,
          interceptor: createClientInterceptor(tracing.tracer, metrics.clientCall(downstream)),
          setBreakerState: (state) => metrics.setBreakerState(downstream, state),
          registry: metrics.registry,
        };
        clients.set(downstream, client);
      }
      return client;
    },
    forceFlush: () => tracing.forceFlush(),
    shutdown: () => tracing.shutdown(),
  };
}

/**
 * The observability settings of a service, under its prefix: its metrics
 * port, and the standard OpenTelemetry variables (shared by every service).
 */
export function telemetrySettings(prefix: string, metricsPort: number) {
  return {
    metricsPort: {
      env: `${prefix}_METRICS_PORT`,
      doc: `Port of the Prometheus endpoint GET /metrics (0 picks a free one); unset: ${metricsPort}, or 0 when ${prefix}_PORT is 0.`,
      // Resolved against the gRPC port by resolveMetricsPort: the default depends on it.
      schema: z.union([z.literal(""), settings.port()]).transform((value): MetricsPortSetting => ({ port: value === "" ? undefined : value, fallback: metricsPort })),
      default: "",
    },
    tracesExporter: {
      env: "OTEL_TRACES_EXPORTER",
      doc: "Where spans go: none (tracing off), otlp (OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT) or console.",
      schema: z.enum(TRACES_EXPORTERS, { error: "expected one of none, otlp, console" }),
      default: "none",
    },
    otlpEndpoint: {
      env: "OTEL_EXPORTER_OTLP_ENDPOINT",
      doc: "OTLP/HTTP base URL of the trace collector (Jaeger, an OpenTelemetry Collector); spans are sent to <url>/v1/traces.",
      schema: settings.optionalUrl(),
      default: "http://localhost:4318",
    },
    otlpProtocol: {
      env: "OTEL_EXPORTER_OTLP_PROTOCOL",
      doc: "How spans are sent to it: http/protobuf (smaller, cheaper to write) or http/json.",
      schema: z.enum(OTLP_PROTOCOLS, { error: "expected http/protobuf or http/json (OTLP over gRPC is not offered)" }),
      default: "http/protobuf",
    },
    otelServiceName: {
      env: "OTEL_SERVICE_NAME",
      doc: "service.name of this process's spans; unset: the service's own name (the all-in-one mode always uses each service's own).",
      schema: settings.text(),
      default: "",
    },
    spanBatchDelayMs: {
      env: "OTEL_BSP_SCHEDULE_DELAY",
      doc: "Delay between two span exports, ms.",
      schema: settings.durationMs(),
      default: 5000,
    },
    tracesSampler: {
      env: "OTEL_TRACES_SAMPLER",
      doc:
        "Which traces are recorded: parentbased_always_on (all; a caller's traceparent decides for the traces it started), " +
        "parentbased_traceidratio (the traces this service starts at the ratio OTEL_TRACES_SAMPLER_ARG, callers' decisions followed), " +
        "parentbased_always_off, traceidratio, always_on or always_off.",
      schema: z.enum(TRACES_SAMPLERS, { error: `expected one of ${TRACES_SAMPLERS.join(", ")}` }),
      default: "parentbased_always_on",
    },
    tracesSamplerArg: {
      env: "OTEL_TRACES_SAMPLER_ARG",
      doc: "The ratio of the *traceidratio samplers, from 0 to 1 (0.1: one trace in ten); the other samplers ignore it.",
      schema: settings.ratio(),
      default: 1,
    },
  } as const;
}

/** <SVC>_METRICS_PORT as loaded: the port set, if any, and the service's default. */
export interface MetricsPortSetting {
  readonly port: number | undefined;
  readonly fallback: number;
}

/** The telemetry settings as loaded. */
export interface TelemetryConfig {
  readonly port: number;
  readonly metricsPort: MetricsPortSetting;
  readonly tracesExporter: TracesExporterName;
  readonly otlpEndpoint: string | undefined;
  readonly otlpProtocol: OtlpProtocol;
  readonly otelServiceName: string;
  readonly spanBatchDelayMs: number;
  readonly tracesSampler: TracesSamplerName;
  readonly tracesSamplerArg: number;
}

/** The metrics port to bind: the configured one, else the service's default — or any free one when its gRPC port is 0 (tests, several instances). */
export function resolveMetricsPort(config: Pick<TelemetryConfig, "port" | "metricsPort">): number {
  if (config.metricsPort.port !== undefined) return config.metricsPort.port;
  return config.port === 0 ? 0 : config.metricsPort.fallback;
}

export function telemetryFromConfig(service: string, config: TelemetryConfig, exporter?: SpanExporter, log?: Logger): Telemetry {
  return createTelemetry({
    service,
    serviceName: config.otelServiceName,
    tracesExporter: exporter ?? config.tracesExporter,
    ...(config.otlpEndpoint ? { otlpEndpoint: config.otlpEndpoint } : {}),
    otlpProtocol: config.otlpProtocol,
    scheduleDelayMs: config.spanBatchDelayMs,
    sampler: config.tracesSampler,
    samplerRatio: config.tracesSamplerArg,
    ...(log ? { log } : {}),
  });
}
