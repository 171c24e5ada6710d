import { loadConfig, serviceSettings, settings, type ConfigOf } from "@meshwork/platform";

/** Every setting of the catalog service, with its environment variable and default. */
export const catalogConfigSpec = {
  ...serviceSettings("CATALOG", { port: 50052, metricsPort: 9466, dataDir: ".data/pglite" }),
  seedDemoCatalog: { env: "CATALOG_SEED_DEMO", doc: "Insert the demo products that are missing at start-up.", schema: settings.bool(), default: "true" },
};

export type CatalogConfig = ConfigOf<typeof catalogConfigSpec>;

export const loadCatalogConfig = (env: Readonly<Record<string, string | undefined>>): CatalogConfig => loadConfig(catalogConfigSpec, env);
