/**
 * The all-in-one mode: every service in this process, each on its own port
 * and talking gRPC over loopback, sharing one embedded PostgreSQL (a schema
 * each) and the in-process broker and task queue instead of RabbitMQ. Used by
 * `npm start` and by the tests of the embedded mode. Services start callees
 * first, and each caller is given the ports its callees actually got, so any
 * port may be overridden (or 0).
 */
import { startCatalog } from "@meshwork/catalog";
import { startGateway } from "@meshwork/gateway";
import { startIdentity } from "@meshwork/identity";
import { startNotifications } from "@meshwork/notifications";
import { startOrders } from "@meshwork/orders";
import { startPayments } from "@meshwork/payments";
import { createLogger, createMemoryBroker, createMemoryTaskQueue, type Shutdown } from "@meshwork/platform";
import { DEV_EDGE_EXPOSURE } from "./dev-edge.js";

export type Env = Readonly<Record<string, string | undefined>>;

export interface RunningShop {
  /** Port of each service by name. */
  readonly ports: Readonly<Record<ServiceName, number>>;
  /** Port of each service's GET /metrics. */
  readonly metricsPorts: Readonly<Record<ServiceName, number>>;
  /** Stops every service, last started first. */
  stop(reason: string): Promise<boolean>;
}

export type ServiceName = "identity" | "catalog" | "payments" | "notifications" | "orders" | "gateway";

export const SERVICE_DESCRIPTIONS: Readonly<Record<ServiceName, string>> = {
  identity: "shop.identity.v1.IdentityService",
  catalog: "shop.catalog.v1.CatalogService, StockService (internal)",
  payments: "shop.payments.v1.PaymentService (internal)",
  notifications: "shop.notifications.v1.NotificationService",
  orders: "shop.orders.v2.OrderService, shop.orders.v2.SalesService, shop.orders.v1.OrderService (deprecated)",
  gateway: "Connect, gRPC-web and gRPC for browsers: the public API of all of the above",
};

export async function startAllInOne(given: Env): Promise<RunningShop> {
  // One OTEL_SERVICE_NAME for six services would merge them in every trace
  // view: here each service's spans carry its own name (one tracer provider each).
  const { OTEL_SERVICE_NAME: _oneName, ...env } = given;
  const broker = createMemoryBroker();
  const taskQueue = createMemoryTaskQueue({ broker, log: createLogger({ service: "queue", level: env.NOTIFICATIONS_LOG_LEVEL ?? "warn" }) });
  const started: { name: ServiceName; port: number; metricsPort: number; shutdown: Shutdown }[] = [];
  const stop = async (reason: string): Promise<boolean> => {
    let ok = true;
    for (const service of [...started].reverse()) ok = (await service.shutdown.run(reason)) && ok;
    await taskQueue.close();
    return ok;
  };
  const at = (name: ServiceName): string => `127.0.0.1:${started.find((service) => service.name === name)!.port}`;
  try {
    const first = await Promise.all([
      startIdentity(env).then((running) => ({ name: "identity" as const, ...running })),
      startCatalog(env).then((running) => ({ name: "catalog" as const, ...running })),
      startPayments(env).then((running) => ({ name: "payments" as const, ...running })),
    ]);
    started.push(...first);
    const notifications = await startNotifications({ ...env, NOTIFICATIONS_IDENTITY_ADDR: at("identity") }, { broker, taskQueue });
    started.push({ name: "notifications", ...notifications });
    const orders = await startOrders({ ...env, ORDERS_CATALOG_ADDR: at("catalog"), ORDERS_PAYMENTS_ADDR: at("payments"), ORDERS_IDENTITY_ADDR: at("identity") }, { broker });
    started.push({ name: "orders", ...orders });
    const gateway = await startGateway({
      ...DEV_EDGE_EXPOSURE,
      ...env,
      GATEWAY_IDENTITY_ADDR: at("identity"),
      GATEWAY_CATALOG_ADDR: at("catalog"),
      GATEWAY_PAYMENTS_ADDR: at("payments"),
      GATEWAY_NOTIFICATIONS_ADDR: at("notifications"),
      GATEWAY_ORDERS_ADDR: at("orders"),
    });
    started.push({ name: "gateway", ...gateway });
  } catch (error) {
    await stop("start-up failed");
    throw error;
  }
  const ports = Object.fromEntries(started.map((service) => [service.name, service.port])) as Record<ServiceName, number>;
  const metricsPorts = Object.fromEntries(started.map((service) => [service.name, service.metricsPort])) as Record<ServiceName, number>;
  return { ports, metricsPorts, stop };
}
