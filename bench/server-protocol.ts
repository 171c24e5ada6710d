/**
 * The messages a bench server child and the bench parent exchange over the
 * fork() IPC channel. IPC is used only at the edges of a measure window (and
 * for start/stop), never per call, so it does not disturb what is measured.
 */

/**
 * "platform": the catalog on the platform host; "bare": a bare grpc-js
 * server; "observed": the platform catalog with tracing (every call sampled,
 * spans exported over OTLP/HTTP to the "otlp-sink") and metrics on;
 * "sampled": the same, but starting every call's trace itself and recording
 * one in ten (OTEL_TRACES_SAMPLER=parentbased_traceidratio, _ARG=0.1); "gateway":
 * the real gateway (services/gateway) in front of an upstream catalog, its
 * catalog cache as the start message says; "proxy": a minimal grpc-js proxy
 * forwarding the catalog's GetProduct bytes to an upstream catalog;
 * "otlp-sink": where "observed" and "sampled" export their spans (otlp-sink.ts).
 */
export type ServerKind = "platform" | "bare" | "observed" | "sampled" | "gateway" | "proxy" | "otlp-sink";

/** The two servers of host-vs-bare. */
export const SERVER_KINDS = ["platform", "bare"] as const satisfies readonly ServerKind[];

/**
 * The bare server's only method. A path of its own (not the catalog's) so
 * nobody mistakes it for a catalog implementation.
 */
export const BARE_METHOD_PATH = "/meshwork.bench.v1.BareEcho/Echo";

export type ToChild =
  /** Start serving. The bare server needs the response bytes it will answer every call with. */
  | { readonly type: "start"; readonly responseBase64?: string; readonly settings?: StartSettings }
  /** Report CPU and served-call counters now; the parent diffs two marks. */
  | { readonly type: "mark"; readonly id: number }
  /** A full garbage collection now (the child runs with --expose-gc); answered "collected". */
  | { readonly type: "collect"; readonly id: number }
  /** Shut down and exit (cleanly, so a --cpu-prof profile gets written). */
  | { readonly type: "stop" };

/** What the servers in front of another (gateway, proxy) need to start. */
export interface StartSettings {
  /** host:port of the catalog they forward to. */
  readonly upstream?: string;
  /** The gateway's GATEWAY_CATALOG_CACHE_MS (0: off). */
  readonly catalogCacheMs?: number;
  /** The gateway's GATEWAY_GRPC_PASSTHROUGH (default true; false: gRPC through Connect too). */
  readonly grpcPassthrough?: boolean;
  /** OTLP/HTTP base URL the observed servers export their spans to (the otlp-sink's). */
  readonly otlpEndpoint?: string;
}

export type FromChild =
  | { readonly type: "ready"; readonly port: number }
  | {
      readonly type: "mark";
      readonly id: number;
      /** process.cpuUsage() of the child, in µs. */
      readonly cpuUserUs: number;
      readonly cpuSystemUs: number;
      /** Calls the benchmarked method has answered so far. */
      readonly served: number;
      /** performance.now() in the child, ms: the wall time between two marks. */
      readonly atMs: number;
      /** process.hrtime in µs: the clock of V8 CPU profiles, to cut a profile to the measure windows. */
      readonly monotonicUs: number;
      /** Wall time of the child's main-thread GC pauses so far, µs (absent from a child of an older checkout). */
      readonly gcPauseUs?: number;
    }
  | { readonly type: "collected"; readonly id: number }
  | { readonly type: "failed"; readonly message: string };

export function isServerKind(value: unknown): value is ServerKind {
  return value === "platform" || value === "bare" || value === "observed" || value === "sampled" || value === "gateway" || value === "proxy" || value === "otlp-sink";
}
