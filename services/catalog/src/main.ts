import { CatalogService, StockService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { runMain, startService, type RunningService, type StartOptions } from "@meshwork/platform";
import { migrations } from "../migrations/index.js";
import { createKnexCatalogStore } from "./adapters/catalog-store.knex.js";
import { loadCatalogConfig } from "./config.js";
import { demoCatalog } from "./demo-catalog.js";
import { createCatalogHandlers, createStockHandlers } from "./service.js";

/**
 * The catalog's composition root: configuration, then adapters, then the
 * server, then shutdown. `env` is the environment to read (process.env when
 * run on its own; the all-in-one launcher passes its own); `options` may hand
 * in a logger or telemetry instead of building them from the config.
 */
export async function startCatalog(env: Readonly<Record<string, string | undefined>>, options: StartOptions = {}): Promise<RunningService> {
  const config = loadCatalogConfig(env);
  return startService({
    name: "catalog",
    config,
    migrations,
    log: options.log,
    telemetry: options.telemetry,
    async setup({ database, host, log }) {
      const store = createKnexCatalogStore(database.knex);
      if (config.seedDemoCatalog) {
        const seeded = await store.seed(demoCatalog);
        if (seeded > 0) log.info({ seeded }, "demo catalog seeded");
      }
      host.add(CatalogService, createCatalogHandlers({ store }));
      host.add(StockService, createStockHandlers({ store }));
    },
  });
}

if (import.meta.filename === process.argv[1]) runMain("catalog", () => startCatalog(process.env));
