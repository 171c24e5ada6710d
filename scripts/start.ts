/**
 * `npm start`: the whole system in one Node process on embedded defaults.
 * Every service keeps its own port and talks gRPC over loopback, with an
 * embedded PostgreSQL (PGlite) data directory of its own under .data/ and
 * the in-process broker in place of RabbitMQ. Environment variables still
 * override any setting (see each service's config.ts).
 */
import { performance } from "node:perf_hooks";
import { startCatalog } from "@meshwork/catalog";
import { startIdentity } from "@meshwork/identity";
import { startNotifications } from "@meshwork/notifications";
import { startOrders } from "@meshwork/orders";
import { startPayments } from "@meshwork/payments";
import { createLogger, createMemoryBroker, createMemoryTaskQueue, type RunningService } from "@meshwork/platform";

const started = performance.now();
// Quiet services by default so the banner stays readable; any *_LOG_LEVEL wins.
const env = {
  IDENTITY_LOG_LEVEL: "warn",
  CATALOG_LOG_LEVEL: "warn",
  PAYMENTS_LOG_LEVEL: "warn",
  ORDERS_LOG_LEVEL: "warn",
  NOTIFICATIONS_LOG_LEVEL: "warn",
  ...process.env,
};
// The in-process stand-ins for RabbitMQ: orders publishes to the broker, notifications consumes through the queue.
const broker = createMemoryBroker();
const taskQueue = createMemoryTaskQueue({ broker, log: createLogger({ service: "queue", level: "warn" }) });

interface Entry {
  readonly name: string;
  readonly serves: string;
  readonly start: () => Promise<RunningService>;
}

const services: Entry[] = [
  { name: "identity", serves: "shop.identity.v1.IdentityService", start: () => startIdentity(env) },
  { name: "catalog", serves: "shop.catalog.v1.CatalogService, StockService (internal)", start: () => startCatalog(env) },
  { name: "payments", serves: "shop.payments.v1.PaymentService (internal)", start: () => startPayments(env) },
  { name: "notifications", serves: "shop.notifications.v1.NotificationService", start: () => startNotifications(env, { broker, taskQueue }) },
  // Orders resolves the others at their default ports; it starts last.
  { name: "orders", serves: "shop.orders.v1.OrderService", start: () => startOrders(env, { broker }) },
];

async function main(): Promise<void> {
  const running: (Entry & RunningService)[] = [];
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    Promise.all(running.map((service) => service.shutdown.run(signal))).then(
      (results) => process.exit(results.every(Boolean) ? 0 : 1),
      () => process.exit(1),
    );
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));

  const first = services.slice(0, -1);
  running.push(...(await Promise.all(first.map(async (service) => ({ ...service, ...(await service.start()) })))));
  const last = services.at(-1)!;
  running.push({ ...last, ...(await last.start()) });

  const readyMs = Math.round(performance.now() - started);
  const rssMb = Math.round(process.memoryUsage().rss / 1024 / 1024);
  const port = (name: string): number => running.find((service) => service.name === name)!.port;
  const curl = "npx buf curl --protocol grpc --http2-prior-knowledge";
  const lines = [
    "",
    `Meshwork is running (embedded mode: PGlite data in .data/, in-process broker), ready in ${readyMs} ms, ${rssMb} MB resident.`,
    "",
    ...running.map((service) => `  ${service.name.padEnd(13)} grpc://127.0.0.1:${service.port}   ${service.serves}`),
    "",
    "Try it (reflection is on, no .proto files needed):",
    `  ${curl} --list-methods http://127.0.0.1:${port("catalog")}`,
    `  ${curl} -d '{"pageSize":3}' http://127.0.0.1:${port("catalog")}/shop.catalog.v1.CatalogService/ListProducts`,
    `  ${curl} -d '{"email":"ada@example.com","password":"correct horse","displayName":"Ada"}' http://127.0.0.1:${port("identity")}/shop.identity.v1.IdentityService/SignUp`,
    "",
    "Ctrl-C stops it gracefully.",
    "",
  ];
  process.stdout.write(lines.join("\n"));
}

main().catch((error: unknown) => {
  process.stderr.write(`Meshwork failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
