import { openDatabase, type Database, type Migration } from "./database.js";
import { createDiscovery, type Discovery } from "./discovery-from-config.js";
import { createLogger, type Logger } from "./logger.js";
import { createGrpcHost, type GrpcHost } from "./server.js";
import { createShutdown, type Shutdown } from "./shutdown.js";
import { resolveMetricsPort, startMetricsServer, telemetryFromConfig, traceKnex, type Telemetry, type TelemetryConfig } from "./telemetry/index.js";

/** The settings of every process the runtime starts: where it listens, its logs, shutdown, Consul and telemetry. */
export interface RuntimeConfig extends TelemetryConfig {
  readonly host: string;
  readonly port: number;
  readonly logLevel: string;
  readonly shutdownGraceMs: number;
  readonly consulAddr: string;
  readonly consulToken: string;
}

/** The settings every gRPC service has (see serviceSettings in config.ts): a RuntimeConfig, its database and the host it is reached on. */
export interface CommonServiceConfig extends RuntimeConfig {
  readonly advertiseHost: string;
  /** The gRPC host's maxConnectionAgeMs (0: connections are kept). */
  readonly maxConnectionAgeMs: number;
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
}

/**
 * The second argument of every service's start function, `startX(env, options)`:
 * what a caller may hand in instead of having it built from the config. A
 * service adds its own (the in-process broker, ...).
 */
export interface StartOptions {
  /** Default: a logger at the service's <PREFIX>_LOG_LEVEL. */
  readonly log?: Logger | undefined;
  /** Telemetry built by the caller (a test's exporter, a benchmark); default: from the config. */
  readonly telemetry?: Telemetry | undefined;
}

/** What every setup receives to build its adapters. */
export interface RuntimeParts {
  readonly log: Logger;
  readonly discovery: Discovery;
  /** Add a step for anything setup starts (workers, clients); it runs after the endpoint drained, before the database closes. */
  readonly shutdown: Shutdown;
  /** Tracer and metrics registry: pass `telemetry.forClient(name)` to createClient, add service metrics to `telemetry.metrics`. */
  readonly telemetry: Telemetry;
}

/** What a service's setup receives to build its adapters and mount its handlers. */
export interface ServiceParts extends RuntimeParts {
  readonly database: Database;
  readonly host: GrpcHost;
}

/**
 * What a process serves. The runtime listens on it once setup is done and
 * turns it SERVING; at shutdown it turns it NOT_SERVING, then drains it.
 */
export interface Endpoint {
  /** What a drain waits for, e.g. "gRPC calls": its shutdown step is "drain gRPC calls". */
  readonly inFlight: string;
  /** Binds, and resolves with the port bound (`port` 0 picks a free one). */
  listen(host: string, port: number): Promise<number>;
  setServing(serving: boolean): void;
  /** Takes no new work and waits up to `graceMs` for the work in flight, logging what it had to cut off. */
  drain(graceMs: number): Promise<void>;
}

export interface ServiceDefinition extends StartOptions {
  /** Service name, e.g. "catalog": logs, discovery, migrations table. */
  readonly name: string;
  readonly config: CommonServiceConfig;
  readonly migrations: readonly Migration[];
  /** Addresses of the services it calls, used when Consul is not configured. */
  readonly staticAddresses?: Record<string, string[]>;
  /** Builds adapters, mounts handlers with parts.host.add(...), starts workers. */
  setup(parts: ServiceParts): Promise<void>;
}

/** A process with no database of its own that serves an endpoint it builds itself: the gateway. */
export interface EdgeDefinition extends StartOptions {
  /** Its name, e.g. "gateway": logs and the metrics' service label. */
  readonly name: string;
  readonly config: RuntimeConfig;
  /** Addresses of the services it calls, used when Consul is not configured. */
  readonly staticAddresses?: Record<string, string[]>;
  /** Builds clients and routes, and returns what to serve (and fields for the "serving" log line). */
  setup(parts: RuntimeParts): Promise<{ readonly endpoint: Endpoint; readonly logFields?: Record<string, unknown> }>;
}

export interface RunningService {
  readonly port: number;
  /** Port of GET /metrics. */
  readonly metricsPort: number;
  readonly telemetry: Telemetry;
  readonly log: Logger;
  readonly shutdown: Shutdown;
}

/**
 * The start-up sequence every gRPC service shares: database and migrations,
 * the gRPC host, the service's own setup, listen, register in discovery,
 * SERVING. Each step adds its undo to the shutdown, which therefore runs
 * NOT_SERVING, deregister, drain, the service's own steps, close the database.
 */
export function startService(definition: ServiceDefinition): Promise<RunningService> {
  const { config, name } = definition;
  return startRuntime({
    name,
    config,
    log: definition.log,
    telemetry: definition.telemetry,
    staticAddresses: definition.staticAddresses,
    async open({ log, shutdown, telemetry }) {
      const database = await openDatabase({
        url: config.databaseUrl,
        // serviceSettings(prefix) names it; every service's prefix is its name.
        urlSetting: `${name.toUpperCase()}_DATABASE_URL`,
        dataDir: config.dataDir,
        schema: name,
        migrations: definition.migrations,
        migrationsTable: `${name}_migrations`,
        log,
      });
      shutdown.add("close database", () => database.close());
      await database.migrate();
      if (telemetry.tracer) traceKnex(database.knex, telemetry.tracer, name);
      return database;
    },
    async serve(parts, database) {
      const host = createGrpcHost({ name, log: parts.log, telemetry: parts.telemetry, maxConnectionAgeMs: config.maxConnectionAgeMs });
      await definition.setup({ ...parts, database, host });
      return { endpoint: grpcEndpoint(host, parts.log), advertiseHost: config.advertiseHost, logFields: { database: database.kind } };
    },
  });
}

/**
 * The same sequence for a process that builds what it serves and owns no
 * database (the gateway): its setup returns the endpoint, which is listened
 * on, drained and turned SERVING like a gRPC host; it is not registered in
 * discovery (nothing in the mesh calls it).
 */
export function startEdgeService(definition: EdgeDefinition): Promise<RunningService> {
  return startRuntime({
    name: definition.name,
    config: definition.config,
    log: definition.log,
    telemetry: definition.telemetry,
    staticAddresses: definition.staticAddresses,
    open: async () => undefined,
    serve: (parts) => definition.setup(parts),
  });
}

interface RuntimeSteps<Opened> extends StartOptions {
  readonly name: string;
  readonly config: RuntimeConfig;
  readonly staticAddresses: Record<string, string[]> | undefined;
  /** Opens what the process owns (its database) before discovery; adds its own shutdown steps. */
  open(parts: Pick<RuntimeParts, "log" | "shutdown" | "telemetry">): Promise<Opened>;
  /** Builds what the process serves; `advertiseHost` registers it in discovery under its name. */
  serve(parts: RuntimeParts, opened: Opened): Promise<{ readonly endpoint: Endpoint; readonly advertiseHost?: string; readonly logFields?: Record<string, unknown> }>;
}

async function startRuntime<Opened>(steps: RuntimeSteps<Opened>): Promise<RunningService> {
  const { config, name } = steps;
  const log = steps.log ?? createLogger({ service: name, level: config.logLevel });
  const shutdown = createShutdown(log);
  const telemetry = steps.telemetry ?? telemetryFromConfig(name, config, undefined, log);
  // Added first, so it runs last: spans of the shutdown itself still get out.
  shutdown.add("flush traces", () => telemetry.shutdown());
  try {
    const metrics = await startMetricsServer({ registry: telemetry.metrics.registry, host: config.host, port: resolveMetricsPort(config), log });
    shutdown.add("stop metrics endpoint", () => metrics.close());
    const opened = await steps.open({ log, shutdown, telemetry });

    const discovery = createDiscovery({
      consulAddr: config.consulAddr,
      consulToken: config.consulToken,
      log,
      ...(steps.staticAddresses ? { staticAddresses: steps.staticAddresses } : {}),
    });
    shutdown.add("stop discovery", async () => discovery.close());

    const { endpoint, advertiseHost, logFields } = await steps.serve({ log, discovery, shutdown, telemetry }, opened);

    const port = await endpoint.listen(config.host, config.port);
    shutdown.add(`drain ${endpoint.inFlight}`, () => endpoint.drain(config.shutdownGraceMs));

    if (advertiseHost !== undefined) {
      const registration = await discovery.registry.register({
        name,
        id: `${name}-${advertiseHost}-${port}`,
        host: advertiseHost,
        port,
        tags: ["grpc"],
      });
      shutdown.add("deregister", () => registration.deregister());
    }

    endpoint.setServing(true);
    shutdown.add("health NOT_SERVING", async () => endpoint.setServing(false));
    log.info({ port, metricsPort: metrics.port, tracing: telemetry.tracer ? config.tracesExporter : "off", ...logFields, discovery: discovery.kind }, `${name} serving`);
    return { port, metricsPort: metrics.port, telemetry, log, shutdown };
  } catch (error) {
    await shutdown.run("start-up failed");
    throw error;
  }
}

function grpcEndpoint(host: GrpcHost, log: Logger): Endpoint {
  return {
    inFlight: "gRPC calls",
    listen: (address, port) => host.listen({ host: address, port }),
    setServing: (serving) => host.setServing(serving),
    async drain(graceMs) {
      const { drained } = await host.shutdown(graceMs);
      if (!drained) log.warn({ graceMs }, "in-flight calls cancelled after the grace period");
    },
  };
}

/**
 * The tail of every main.ts: start, install signal handlers, and on failure
 * print the reason (a ConfigError names the bad keys) and exit 1.
 */
export function runMain(name: string, start: () => Promise<{ shutdown: Shutdown }>): void {
  start().then(
    ({ shutdown }) => shutdown.installSignalHandlers(),
    (error: unknown) => {
      process.stderr.write(`${name} failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
