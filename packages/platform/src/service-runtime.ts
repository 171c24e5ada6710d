import { openDatabase, type Database, type Migration } from "./database.js";
import { createDiscovery, type Discovery } from "./discovery-from-config.js";
import { createLogger, type Logger } from "./logger.js";
import { createGrpcHost, type GrpcHost } from "./server.js";
import { createShutdown, type Shutdown } from "./shutdown.js";

/** The settings every service has (see serviceSettings in config.ts). */
export interface CommonServiceConfig {
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
}

export interface ServiceDefinition {
  /** Service name, e.g. "catalog": logs, discovery, migrations table. */
  readonly name: string;
  readonly config: CommonServiceConfig;
  readonly migrations: readonly Migration[];
  /** Addresses of the services it calls, used when Consul is not configured. */
  readonly staticAddresses?: Record<string, string[]>;
  readonly log?: Logger;
  /** Builds adapters, mounts handlers with parts.host.add(...), starts workers. */
  setup(parts: ServiceParts): Promise<void>;
}

export interface RunningService {
  readonly port: number;
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
  try {
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

    const discovery = createDiscovery({
      consulAddr: config.consulAddr,
      consulToken: config.consulToken,
      log,
      ...(definition.staticAddresses ? { staticAddresses: definition.staticAddresses } : {}),
    });
    shutdown.add("stop discovery", async () => discovery.close());

    const host = createGrpcHost({ name, log });
    await definition.setup({ log, database, host, discovery, shutdown });

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
    log.info({ port, database: database.kind, discovery: discovery.kind }, `${name} serving`);
    return { port, log, shutdown };
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
