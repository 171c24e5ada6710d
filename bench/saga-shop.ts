/**
 * Child process of the "saga" section: services of the order flow, each on a
 * fresh PostgreSQL database, orders publishing to a RabbitMQ exchange of its
 * own. Its argument says which: "all" (the four in this process, the
 * default), "backends" (identity, catalog, payments) or "orders" (orders
 * alone, calling the backends at BENCH_SAGA_BACKENDS, a JSON of their
 * ports). The children of one run share BENCH_SAGA_SUFFIX in their database
 * names. Reports its ports over IPC; on "stop" it shuts down and drops its databases.
 */
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import pg from "pg";
import { admin, adminUrl, databaseUrl } from "./admin-db.js";
import { countSql, sqlCounts } from "./sql-counter.js";
import { startCatalog } from "@meshwork/catalog";
import { startIdentity } from "@meshwork/identity";
import { startOrders } from "@meshwork/orders";
import { startPayments } from "@meshwork/payments";

const amqpUrl = process.env.MESHWORK_TEST_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const role = process.argv[2] ?? "all";
if (role !== "all" && role !== "backends" && role !== "orders") throw new Error(`saga shop: unknown role ${role} (all, backends or orders)`);
const suffix = process.env.BENCH_SAGA_SUFFIX ?? randomBytes(4).toString("hex");
const SERVICES = { all: ["identity", "catalog", "payments", "orders"], backends: ["identity", "catalog", "payments"], orders: ["orders"] } as const;
const dbName = (service: string): string => `mw_bench_${service}_${suffix}`;
/** This process's databases: the SQL it counts and the PostgreSQL CPU it reports are theirs. */
const names = SERVICES[role].map(dbName);

interface BackendPorts {
  readonly identity: number;
  readonly catalog: number;
  readonly payments: number;
}

async function main(): Promise<void> {
  countSql({ byText: Boolean(process.env.BENCH_SAGA_SQL) });
  for (const name of names) await admin(`create database "${name}"`);
  const exchange = `bench.orders.${suffix}`;
  const quiet = "warn";
  const services: { shutdown: { run(reason: string): Promise<unknown> } }[] = [];
  let backends: BackendPorts | undefined;
  if (role !== "orders") {
    const identity = await startIdentity({ IDENTITY_PORT: "0", IDENTITY_DATABASE_URL: databaseUrl(dbName("identity")), IDENTITY_SCRYPT_N: "1024", IDENTITY_LOG_LEVEL: quiet });
    const catalog = await startCatalog({ CATALOG_PORT: "0", CATALOG_DATABASE_URL: databaseUrl(dbName("catalog")), CATALOG_LOG_LEVEL: quiet });
    const payments = await startPayments({ PAYMENTS_PORT: "0", PAYMENTS_DATABASE_URL: databaseUrl(dbName("payments")), PAYMENTS_LOG_LEVEL: quiet });
    // Plenty of stock: the figure is about the flow, not about running out.
    const stock = new pg.Client({ connectionString: databaseUrl(dbName("catalog")) });
    await stock.connect();
    await stock.query("update products set stock = 10000000");
    await stock.end();
    services.push(payments, catalog, identity);
    backends = { identity: identity.port, catalog: catalog.port, payments: payments.port };
  } else {
    backends = JSON.parse(process.env.BENCH_SAGA_BACKENDS ?? "null") as BackendPorts | undefined;
    if (!backends) throw new Error("saga shop: role orders needs BENCH_SAGA_BACKENDS (the backends' ports)");
  }
  let ordersPort: number | undefined;
  if (role !== "backends") {
    const orders = await startOrders({
      ORDERS_PORT: "0",
      ORDERS_DATABASE_URL: databaseUrl(dbName("orders")),
      ORDERS_CATALOG_ADDR: `127.0.0.1:${backends.catalog}`,
      ORDERS_PAYMENTS_ADDR: `127.0.0.1:${backends.payments}`,
      ORDERS_IDENTITY_ADDR: `127.0.0.1:${backends.identity}`,
      ORDERS_AMQP_URL: amqpUrl,
      ORDERS_EVENTS_EXCHANGE: exchange,
      ORDERS_LOG_LEVEL: quiet,
      ...Object.fromEntries(Object.entries(process.env).filter(([key]) => key.startsWith("ORDERS_"))),
    });
    services.unshift(orders);
    ordersPort = orders.port;
  }

  process.send?.({ kind: "ready", identityPort: backends.identity, ordersPort, backends, exchange });
  const stop = async (): Promise<void> => {
    for (const service of services) await service.shutdown.run("bench done");
    for (const name of names) await admin(`drop database if exists "${name}" with (force)`);
    process.exit(0);
  };
  process.on("message", (message: { kind?: string }) => {
    if (message.kind === "stop") void stop();
    // Statements and transactions so far, by service (its database's name without the bench's prefix and suffix).
    if (message.kind === "sql") {
      // Only the services' databases: the admin connections (create database, the CPU look-up below) are the bench's own.
      const byService = Object.fromEntries(
        Object.entries(sqlCounts())
          .filter(([database]) => names.includes(database))
          .map(([database, counts]) => [database.replace(/^mw_bench_/, "").replace(/_[0-9a-f]{8}$/, ""), counts]),
      );
      void postgresCpuMs().then((postgresMs) => {
        const { user, system } = process.cpuUsage();
        process.send?.({ kind: "sql", counts: byService, cpu: { shopMs: (user + system) / 1000, postgresMs } });
      });
    }
  });
  process.on("disconnect", () => void stop());
}

/**
 * CPU time, ms, the PostgreSQL backends serving this shop's databases have
 * used so far (from /proc: the server is local to the bench). Together with
 * the shop's own CPU it tells whether an order costs CPU or only waits.
 * Backends that exited meanwhile are not counted; the pools keep theirs.
 */
async function postgresCpuMs(): Promise<number | undefined> {
  const client = new pg.Client({ connectionString: adminUrl });
  try {
    await client.connect();
    const { rows } = await client.query<{ pid: number }>("select pid from pg_stat_activity where datname = any($1)", [names]);
    let ticks = 0;
    for (const { pid } of rows) {
      // Fields 14 and 15 of /proc/<pid>/stat (utime, stime, clock ticks), counted after the command's closing parenthesis.
      const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
    }
    return ticks * 10; // 100 ticks a second (CLK_TCK) on Linux
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => undefined);
  }
}

main().catch(async (error: unknown) => {
  process.stderr.write(`saga bench shop failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  for (const name of names) await admin(`drop database if exists "${name}" with (force)`).catch(() => undefined);
  process.exit(1);
});
