/**
 * `npm run projections:rebuild -- <name>`: the read models of the orders
 * service, by name, each rebuilt from the order streams by its own function
 * (same report, same lock discipline). Opens the database orders itself
 * uses: ORDERS_DATABASE_URL, or the embedded ORDERS_DATA_DIR (stop `npm
 * start` first: embedded PostgreSQL belongs to one process).
 */
import { openDatabase, type Knex, type Logger, type RebuildOptions, type RebuildReport } from "@meshwork/platform";
import { migrations } from "../migrations/index.js";
import { ORDER_VIEW, rebuildOrderView } from "./adapters/order-view.knex.js";
import { loadOrdersConfig } from "./config.js";
import { rebuildSalesView, SALES_PROJECTION } from "./sales-view.js";

/** Every read model that can be rebuilt, by the name the command takes. */
export const PROJECTIONS: Readonly<Record<string, (db: Knex, options: RebuildOptions) => Promise<RebuildReport>>> = {
  [ORDER_VIEW]: rebuildOrderView,
  [SALES_PROJECTION]: rebuildSalesView,
};

export class UnknownProjectionError extends Error {
  override readonly name = "UnknownProjectionError";
  constructor(readonly projection: string) {
    super(`no projection named ${JSON.stringify(projection)}: the orders service has ${Object.keys(PROJECTIONS).join(", ")}`);
  }
}

/** Rebuilds (or with `check`, checks) projection `name`; `logger` gets the database's logs, `options.log` the progress lines. */
export async function rebuildProjection(env: Readonly<Record<string, string | undefined>>, name: string, logger: Logger, options: RebuildOptions = {}): Promise<RebuildReport> {
  const rebuild = PROJECTIONS[name];
  if (!rebuild) throw new UnknownProjectionError(name);
  const config = loadOrdersConfig(env);
  // The same database and schema as startService opens for orders; migrated first, as the service would.
  const database = await openDatabase({
    url: config.databaseUrl,
    urlSetting: "ORDERS_DATABASE_URL",
    dataDir: config.dataDir,
    schema: "orders",
    migrations,
    migrationsTable: "orders_migrations",
    log: logger,
  });
  try {
    await database.migrate();
    return await rebuild(database.knex, options);
  } finally {
    await database.close();
  }
}
