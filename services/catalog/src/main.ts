import { CatalogService, StockService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import {
  createDiscovery,
  createGrpcHost,
  createLogger,
  createShutdown,
  openDatabase,
  type Logger,
  type Shutdown,
} from "@meshwork/platform";
import { migrations } from "../migrations/index.js";
import { createKnexCatalogStore } from "./adapters/catalog-store.knex.js";
import { loadCatalogConfig } from "./config.js";
import { demoCatalog } from "./demo-catalog.js";
import { createCatalogHandlers, createStockHandlers } from "./service.js";

export interface RunningCatalog {
  /** The port gRPC is served on. */
  readonly port: number;
  /** Graceful shutdown: NOT_SERVING, deregister, drain, close the database. */
  readonly shutdown: Shutdown;
}

/**
 * The catalog's composition root: configuration, then adapters, then the
 * server, then shutdown. `env` is the environment to read (process.env when
 * run on its own; the all-in-one launcher passes its own).
 */
export async function startCatalog(env: Readonly<Record<string, string | undefined>>, log?: Logger): Promise<RunningCatalog> {
  const config = loadCatalogConfig(env);
  log ??= createLogger({ service: "catalog", level: config.logLevel });
  const shutdown = createShutdown(log);

  const database = await openDatabase({
    url: config.databaseUrl,
    dataDir: config.dataDir,
    migrations,
    migrationsTable: "catalog_migrations",
    log,
  });
  shutdown.add("close database", () => database.close());
  try {
    await database.migrate();
    const store = createKnexCatalogStore(database.knex);
    if (config.seedDemoCatalog) {
      const seeded = await store.seed(demoCatalog);
      if (seeded > 0) log.info({ seeded }, "demo catalog seeded");
    }

    const host = createGrpcHost({ name: "catalog", log });
    host.add(CatalogService, createCatalogHandlers({ store }));
    host.add(StockService, createStockHandlers({ store }));
    const port = await host.listen({ host: config.host, port: config.port });
    shutdown.add("drain gRPC calls", async () => {
      const { drained } = await host.shutdown(config.shutdownGraceMs);
      if (!drained) log.warn({ graceMs: config.shutdownGraceMs }, "in-flight calls cancelled after the grace period");
    });

    const discovery = createDiscovery({ consulAddr: config.consulAddr, consulToken: config.consulToken, log });
    shutdown.add("stop discovery", async () => discovery.close());
    const registration = await discovery.registry.register({
      name: "catalog",
      id: `catalog-${config.advertiseHost}-${port}`,
      host: config.advertiseHost,
      port,
      tags: ["grpc", "v1"],
    });
    shutdown.add("deregister", () => registration.deregister());

    host.setServing(true);
    shutdown.add("health NOT_SERVING", async () => host.setServing(false));
    log.info({ port, database: database.kind }, "catalog serving");
    return { port, shutdown };
  } catch (error) {
    await shutdown.run("start-up failed");
    throw error;
  }
}

async function main(): Promise<void> {
  const { shutdown } = await startCatalog(process.env);
  shutdown.installSignalHandlers();
}

if (import.meta.filename === process.argv[1]) {
  main().catch((error: unknown) => {
    process.stderr.write(`catalog failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
