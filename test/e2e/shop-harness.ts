/**
 * A whole shop for end-to-end tests: identity, catalog and payments in this
 * process and orders either here or as its own process (so it can be killed),
 * each on its own fresh PostgreSQL database, orders publishing to a real
 * RabbitMQ exchange named for the test. Everything talks real gRPC on
 * loopback. Skipped (failing in CI) without PostgreSQL and RabbitMQ.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import path from "node:path";
import { createInterface } from "node:readline";
import type { TestScope } from "@meshwork/testing";
import { startCatalog } from "@meshwork/catalog";
import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { OrderService } from "@meshwork/contracts/shop/orders/v1/orders";
import { startIdentity } from "@meshwork/identity";
import { startPayments } from "@meshwork/payments";
import { createClient, createSilentLogger, DEFAULT_RESILIENCE, mergeResilience, openDatabase, type Knex, type ServiceClient } from "@meshwork/platform";
import { amqpUrl, collectFromExchange, connectRabbit, createTestDatabase, uniqueName, type Collector } from "@meshwork/testing";
import { startOrders } from "@meshwork/orders";
import { startGateway } from "@meshwork/gateway";
import { CLOSED_ADDRESS, GENEROUS_LIMITS } from "./gateway-harness.js";

const ordersMain = path.resolve(import.meta.dirname, "../../services/orders/src/main.ts");

export interface ShopOptions {
  /** Run orders as a child process that the test can kill. */
  readonly ordersProcess?: boolean;
  /** Extra environment for orders. */
  readonly ordersEnv?: Record<string, string>;
  /** Extra environment for payments (e.g. live-config latency). */
  readonly paymentsEnv?: Record<string, string>;
}

export interface Shop {
  readonly identity: ServiceClient<typeof IdentityService>;
  /** Where each service listens ("127.0.0.1:port"), for adding more services to the shop. */
  readonly addresses: { readonly identity: string; readonly catalog: string; readonly payments: string; readonly orders: string };
  readonly orders: ServiceClient<typeof OrderService>;
  /** Direct access to each service's database, for assertions. */
  readonly db: { readonly identity: Knex; readonly catalog: Knex; readonly payments: Knex; readonly orders: Knex };
  readonly events: Collector;
  readonly exchange: string;
  /** Orders as a process: kill it and start it again. */
  readonly ordersProcess?: OrdersProcess;
  /** Where orders serves /metrics, when it runs in this process (not with ordersProcess). */
  readonly ordersMetricsPort?: number;
  /** Runs `step` at the end of the test, before the shop's services stop (last in, first out): for what a test adds in front of them. */
  readonly defer: (step: () => unknown) => void;
}

export interface OrdersProcess {
  start(): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  readonly starts: number;
}

async function knexFor(cleanup: (() => unknown)[], url: string): Promise<Knex> {
  const database = await openDatabase({ url, migrations: [], migrationsTable: "assert_migrations", log: createSilentLogger() });
  cleanup.push(() => database.close());
  return database.knex;
}

export async function startShop(t: TestScope, options: ShopOptions = {}): Promise<Shop | undefined> {
  const cleanup: (() => unknown)[] = [];
  const urls: Record<string, string> = {};
  for (const name of ["identity", "catalog", "payments", "orders"]) {
    const url = await createTestDatabase(t, name);
    if (!url) return undefined;
    urls[name] = url;
  }
  const rabbit = await connectRabbit(t);
  if (!rabbit) return undefined;
  const exchange = uniqueName("orders");
  const events = await collectFromExchange(rabbit, exchange);
  // Registered after the databases and the broker connection, so it runs before
  // they go (vitest runs clean-up last in, first out): services stop, last started first.
  t.onTestFinished(async () => {
    // Every step runs even when one fails, or a failure would leave servers running and hang the file.
    const failures: unknown[] = [];
    for (const step of cleanup.reverse()) {
      try {
        await step();
      } catch (error) {
        failures.push(error);
      }
    }
    if (failures.length > 0) throw new AggregateError(failures, "shop clean-up failed");
  });

  const quiet = "warn";
  const identity = await startIdentity({ IDENTITY_PORT: "0", IDENTITY_DATABASE_URL: urls.identity, IDENTITY_SCRYPT_N: "1024", IDENTITY_LOG_LEVEL: quiet });
  cleanup.push(() => identity.shutdown.run("test done"));
  const catalog = await startCatalog({ CATALOG_PORT: "0", CATALOG_DATABASE_URL: urls.catalog, CATALOG_LOG_LEVEL: quiet });
  cleanup.push(() => catalog.shutdown.run("test done"));
  const payments = await startPayments({ PAYMENTS_PORT: "0", PAYMENTS_DATABASE_URL: urls.payments, PAYMENTS_LOG_LEVEL: quiet, ...options.paymentsEnv });
  cleanup.push(() => payments.shutdown.run("test done"));

  const ordersEnv: Record<string, string> = {
    ORDERS_DATABASE_URL: urls.orders!,
    ORDERS_CATALOG_ADDR: `127.0.0.1:${catalog.port}`,
    ORDERS_PAYMENTS_ADDR: `127.0.0.1:${payments.port}`,
    ORDERS_IDENTITY_ADDR: `127.0.0.1:${identity.port}`,
    ORDERS_AMQP_URL: amqpUrl(),
    ORDERS_EVENTS_EXCHANGE: exchange,
    ORDERS_LOG_LEVEL: quiet,
    ...options.ordersEnv,
  };

  let ordersPort: number;
  let ordersMetricsPort: number | undefined;
  let ordersProcess: OrdersProcess | undefined;
  if (options.ordersProcess) {
    // A fixed port, so clients keep dialling the same address across restarts; below
    // Linux's ephemeral range (32768+), where port-0 servers of parallel tests land.
    ordersPort = 20_000 + Math.floor(Math.random() * 12_000);
    let child: ChildProcess | undefined;
    let starts = 0;
    ordersProcess = {
      get starts() {
        return starts;
      },
      async start() {
        starts++;
        child = spawn(process.execPath, ["--import", "tsx", ordersMain], {
          env: { ...process.env, ...ordersEnv, ORDERS_PORT: String(ordersPort), ORDERS_LOG_LEVEL: "info", ORDERS_SAGA_LEASE_MS: "1500" },
          stdio: ["ignore", "pipe", "inherit"],
        });
        const lines = createInterface({ input: child.stdout! });
        await new Promise<void>((resolve, reject) => {
          child!.once("exit", (code) => reject(new Error(`orders exited with ${code} before serving`)));
          lines.on("line", (line) => {
            if (line.includes('"orders serving"')) resolve();
          });
        });
      },
      async kill(signal = "SIGKILL") {
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, "exit");
        child.kill(signal);
        await exited;
      },
    };
    cleanup.push(() => ordersProcess!.kill());
    await ordersProcess.start();
  } else {
    const orders = await startOrders({ ...ordersEnv, ORDERS_PORT: "0" });
    cleanup.push(() => orders.shutdown.run("test done"));
    ordersPort = orders.port;
    ordersMetricsPort = orders.metricsPort;
  }

  const identityClient = createClient(IdentityService, { target: `127.0.0.1:${identity.port}` });
  // The shoppers of these tests are persistent clients that retry with the same
  // idempotency key until they get an answer (the crash test kills orders every
  // second or so): they have no breaker, which would keep them away during the
  // short windows the killed service is up (even thresholds set out of reach
  // were met: a thousand resends in one outage is more than half of a window of
  // a thousand). Breakers are tested on their own (packages/platform/src/resilience, test/chaos).
  const ordersClient = createClient(OrderService, {
    target: `127.0.0.1:${ordersPort}`,
    resilience: mergeResilience(DEFAULT_RESILIENCE, { breaker: { enabled: false } }),
    // Nor do they wait out grpc-js' growing reconnect back-off (up to the
    // platform's 5 s), which could span several of those windows in a row.
    channelOptions: { "grpc.initial_reconnect_backoff_ms": 50, "grpc.max_reconnect_backoff_ms": 250 },
  });
  cleanup.push(() => {
    identityClient.close();
    ordersClient.close();
  });
  return {
    addresses: {
      identity: `127.0.0.1:${identity.port}`,
      catalog: `127.0.0.1:${catalog.port}`,
      payments: `127.0.0.1:${payments.port}`,
      orders: `127.0.0.1:${ordersPort}`,
    },
    identity: identityClient.client,
    orders: ordersClient.client,
    db: {
      identity: await knexFor(cleanup, urls.identity!),
      catalog: await knexFor(cleanup, urls.catalog!),
      payments: await knexFor(cleanup, urls.payments!),
      orders: await knexFor(cleanup, urls.orders!),
    },
    events,
    exchange,
    ...(ordersProcess ? { ordersProcess } : {}),
    ...(ordersMetricsPort === undefined ? {} : { ordersMetricsPort }),
    defer: (step) => void cleanup.push(step),
  };
}

/** Signs a new user up and in; returns the authorization header for its calls. */
export async function newShopper(shop: Shop, name = "shopper"): Promise<{ userId: string; headers: { authorization: string } }> {
  const email = `${name}-${randomUUID()}@example.test`;
  const password = "correct horse battery";
  const { user } = await shop.identity.signUp({ email, password, displayName: name });
  const { accessToken } = await shop.identity.signIn({ email, password });
  return { userId: user!.id, headers: { authorization: `Bearer ${accessToken}` } };
}

/** The shop behind a real gateway (reflection off, as by default; notifications absent). */
export async function startShopBehindGateway(t: TestScope, options: ShopOptions = {}) {
  const shop = await startShop(t, options);
  if (!shop) return undefined;
  const gateway = await startGateway(
    {
      GATEWAY_PORT: "0",
      GATEWAY_IDENTITY_ADDR: shop.addresses.identity,
      GATEWAY_CATALOG_ADDR: shop.addresses.catalog,
      GATEWAY_ORDERS_ADDR: shop.addresses.orders,
      GATEWAY_PAYMENTS_ADDR: shop.addresses.payments,
      GATEWAY_NOTIFICATIONS_ADDR: CLOSED_ADDRESS,
      GATEWAY_LOG_LEVEL: "warn",
      ...GENEROUS_LIMITS,
    },
    { log: createSilentLogger() },
  );
  shop.defer(() => gateway.shutdown.run("test done"));
  return { shop, gateway };
}
