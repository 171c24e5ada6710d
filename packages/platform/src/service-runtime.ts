import { openDatabase, type Database, type Migration } from "./database.js";
import { createDiscovery, type Discovery } from "./discovery-from-config.js";
import { createLogger, type Logger } from "./logger.js";
import { createGrpcHost, type GrpcHost } from "./server.js";
import { createShutdown, type Shutdown } from "./shutdown.js";
import { resolveMetricsPort, startMetricsServer, telemetryFromConfig, traceKnex, type Telemetry, type TelemetryConfig } from "./telemetry/index.js";

/** The settings every service has (see serviceSettings in config.ts). */
export interface CommonServiceConfig extends TelemetryConfig {
  readonly host: string;
  readonly port: number;
  readonly advertiseHost: string;
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly logLevel: string;
  readonly shutdownGraceMs: number;
  readonly consulAddr: string;
  readonly consulToken: string;
}

/** What a service's setup receives to build its adapters and mount its handlers. */
export interface ServiceParts {
  readonly log: Logger;
  readonly database: Database;
  readonly host: GrpcHost;
  readonly discovery: Discovery;
  /** Add a step for anything setup starts (workers, clients); it runs before the database closes. */
  readonly shutdown: Shutdown;
  /** Tracer and metrics registry: pass `telemetry.forClient(name)` to createClient, add service metrics to `telemetry.metrics`. */
  readonly telemetry: Telemetry;
}

export interface ServiceDefinition {
  /** Service name, e.g. "catalog": logs, discovery, migrations table. */
  readonly name: string;
  readonly config: CommonServiceConfig;
  readonly migrations: readonly Migration[];
  /** Addresses of the services it calls, used when Consul is not configured. */
  readonly staticAddresses?: Record<string, string[]>;
  readonly log?: Logger;
  /** Telemetry built by the caller (a benchmark, a test with its own exporter); default: from the config. */
  readonly telemetry?: Telemetry;
  /** Builds adapters, mounts handlers with parts.host.add(...), starts workers. */
  setup(parts: ServiceParts): Promise<void>;
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
 * The start-up sequence every service shares: database and migrations, the
 * gRPC host, the service's own setup, listen, register in discovery, SERVING.
 * Each step adds its undo to the shutdown, which therefore runs NOT_SERVING,
 * deregister, drain, the service's own steps, close the database.
 */
export async function startService(definition: ServiceDefinition): Promise<RunningService> {
  const { config, name } = definition;
  const log = definition.log ?? createLogger({ service: name, level: config.logLevel });
  const shutdown = createShutdown(log);
  const telemetry = definition.telemetry ?? telemetryFromConfig(name, config);
  // Added first, so it runs last: spans of the shutdown itself still get out.
  shutdown.add("flush traces", () => telemetry.shutdown());
  try {
    const metrics = await startMetricsServer({ registry: telemetry.metrics.registry, host: config.host, port: resolveMetricsPort(config), log });
    shutdown.add("stop metrics endpoint", () => metrics.close());
    const database = await openDatabase({
      url: config.databaseUrl,
      dataDir: config.dataDir,
      schema: name,
      migrations: definition.migrations,
      migrationsTable: `${name}_migrations`,
      log,
    });
    shutdown.add("close database", () => database.close());
    await database.migrate();
    if (telemetry.tracer) traceKnex(database.knex, telemetry.tracer, name);

    const discovery = createDiscovery({
      consulAddr: config.consulAddr,
      consulToken: config.consulToken,
      log,
      ...(definition.staticAddresses ? { staticAddresses: definition.staticAddresses } : {}),
    });
    shutdown.add("stop discovery", async () => discovery.close());

    const host = createGrpcHost({ name, log, telemetry });
    await definition.setup({ log, database, host, discovery, shutdown, telemetry });

    const port = await host.listen({ host: config.host, port: config.port });
    shutdown.add("drain gRPC calls", async () => {
      const { drained } = await host.shutdown(config.shutdownGraceMs);
      if (!drained) log.warn({ graceMs: config.shutdownGraceMs }, "in-flight calls cancelled after the grace period");
    });

    const registration = await discovery.registry.register({
      name,
      id: `${name}-${config.advertiseHost}-${port}`,
      host: config.advertiseHost,
      port,
      tags: ["grpc"],
    });
    shutdown.add("deregister", () => registration.deregister());

    host.setServing(true);
    shutdown.add("health NOT_SERVING", async () => host.setServing(false));
    log.info({ port, metricsPort: metrics.port, tracing: telemetry.tracer ? config.tracesExporter : "off", database: database.kind, discovery: discovery.kind }, `${name} serving`);
    return { port, metricsPort: metrics.port, telemetry, log, shutdown };
  } catch (error) {
    await shutdown.run("start-up failed");
    throw error;
  }
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
