/**
 * Prometheus metrics with prom-client, one Registry per service (never the
 * global default one: six services share a process in the all-in-one mode
 * and each serves its own /metrics). Names and labels follow Prometheus
 * conventions (base units, _seconds, _total) and the labels of the
 * go-grpc-prometheus family; every label value comes from a bounded set
 * (service and method names from the contracts, status codes, queue and
 * downstream names from configuration) — never an id.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { codeName, type Code } from "../rpc-errors.js";

/** Seconds; from 0.5 ms (an in-memory read) to 10 s (a deadline). */
const RPC_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Seconds a message waited before a consumer took it: from 1 ms to 5 minutes (retries wait long). */
const LAG_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300];

/** Records one finished call: full service name, method, status code, seconds. */
export type RpcRecorder = (service: string, method: string, code: Code, seconds: number) => void;

/** The breaker states the gauge knows: the resilience policy's ("closed", "open", "half-open") and cockatiel's "isolated". */
export type BreakerGaugeState = "closed" | "open" | "half-open" | "isolated";
export const BREAKER_GAUGE_STATES: readonly BreakerGaugeState[] = ["closed", "open", "half-open", "isolated"];

export interface ServiceMetrics {
  /** This service's registry: what GET /metrics serves. Register further metrics with `registers: [registry]`. */
  readonly registry: Registry;
  /** RED of the RPCs this service serves (grpc_server_handling_seconds). */
  readonly serverCall: RpcRecorder;
  /**
   * serverCall for one method, looked up once (the host takes one per method
   * it mounts): what it records per call is the status code and the seconds.
   */
  serverCallsOf(service: string, method: string): (code: Code, seconds: number) => void;
  /** Calls this service makes to `downstream` (grpc_client_handling_seconds), one recorder per downstream. */
  clientCall(downstream: string): RpcRecorder;
  /**
   * The state of the circuit breaker in front of `downstream`, as the
   * conventional enum gauge meshwork_client_circuit_breaker_state{downstream,state}:
   * 1 for the current state, 0 for the others. Call on every transition.
   */
  setBreakerState(downstream: string, state: BreakerGaugeState): void;
  /** Age of a message when a consumer took it from `queue` (meshwork_queue_consume_lag_seconds). */
  consumeLag(queue: string, seconds: number): void;
  /**
   * One call of a method of a deprecated API package
   * (meshwork_api_deprecated_calls_total{grpc_service,grpc_method}): when it
   * stays flat, the package's clients have moved and it may go at its sunset.
   */
  deprecatedCall(service: string, method: string): void;
}

export interface ServiceMetricsOptions {
  /** The service, as the `service` label on every series (also telling apart the all-in-one mode's services). */
  readonly service: string;
  /** Node process metrics (CPU, memory, event-loop lag, GC) in this registry; default true. */
  readonly processMetrics?: boolean;
}

export function createServiceMetrics(options: ServiceMetricsOptions): ServiceMetrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service: options.service });
  // Per registry, so each service's /metrics is complete on its own; in the
  // all-in-one mode the six registries then describe the same process, which
  // is what it is (the `service` label tells the copies apart).
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });

  const server = new Histogram({
    name: "grpc_server_handling_seconds",
    help: "RPCs served, by service, method and status code: duration in seconds (its _count is the request rate and errors by code).",
    labelNames: ["grpc_service", "grpc_method", "grpc_code"] as const,
    buckets: RPC_BUCKETS,
    registers: [registry],
  });
  const client = new Histogram({
    name: "grpc_client_handling_seconds",
    help: "Calls made to other services, by downstream, service, method and status code: duration in seconds.",
    labelNames: ["downstream", "grpc_service", "grpc_method", "grpc_code"] as const,
    buckets: RPC_BUCKETS,
    registers: [registry],
  });
  const breaker = new Gauge({
    name: "meshwork_client_circuit_breaker_state",
    help: "Circuit breaker state per downstream: 1 for the current state (closed, open, half-open, isolated), 0 for the others.",
    labelNames: ["downstream", "state"] as const,
    registers: [registry],
  });
  const lag = new Histogram({
    name: "meshwork_queue_consume_lag_seconds",
    help: "Age of a message when a consumer took it from the queue, in seconds.",
    labelNames: ["queue"] as const,
    buckets: LAG_BUCKETS,
    registers: [registry],
  });

  const deprecated = new Counter({
    name: "meshwork_api_deprecated_calls_total",
    help: "Calls of methods of deprecated API packages (see api/releases.json), by service and method: when it stays flat, their clients have moved.",
    labelNames: ["grpc_service", "grpc_method"] as const,
    registers: [registry],
  });

  // Children are looked up once per (method, code) and kept: labels() checks
  // and copies the label values, which a call need not pay for each time.
  type Child = { observe(value: number): void };
  const serverMethods = new Map<string, (code: Code, seconds: number) => void>();
  const serverCallsOf = (service: string, method: string): ((code: Code, seconds: number) => void) => {
    const key = `${service}/${method}`;
    let record = serverMethods.get(key);
    if (!record) {
      // By status code, a small integer: an array index, no key to build per call.
      const children: Child[] = [];
      record = (code, seconds) => {
        let child = children[code];
        if (!child) {
          child = server.labels(service, method, codeName(code));
          children[code] = child;
        }
        child.observe(seconds);
      };
      serverMethods.set(key, record);
    }
    return record;
  };
  const serverCall: RpcRecorder = (service, method, code, seconds) => serverCallsOf(service, method)(code, seconds);
  const clientRecorders = new Map<string, RpcRecorder>();

  return {
    registry,
    serverCall,
    serverCallsOf,
    clientCall(downstream) {
      let recorder = clientRecorders.get(downstream);
      if (!recorder) {
        const children = new Map<string, Child>();
        recorder = (service, method, code, seconds) => {
          const key = `${service}/${method}/${code}`;
          let child = children.get(key);
          if (!child) {
            child = client.labels(downstream, service, method, codeName(code));
            children.set(key, child);
          }
          child.observe(seconds);
        };
        clientRecorders.set(downstream, recorder);
      }
      return recorder;
    },
    setBreakerState(downstream, state) {
      for (const candidate of BREAKER_GAUGE_STATES) breaker.labels(downstream, candidate).set(candidate === state ? 1 : 0);
    },
    consumeLag(queue, seconds) {
      lag.labels(queue).observe(Math.max(0, seconds));
    },
    deprecatedCall(service, method) {
      deprecated.labels(service, method).inc();
    },
  };
}
