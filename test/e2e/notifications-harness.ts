/**
 * Notifications beside the real shop of shop-harness.ts: several instances
 * of the service on one fresh PostgreSQL database, competing for one work
 * queue (named for the test) bound to the exchange orders publishes to, on
 * real RabbitMQ. Plus helpers to follow a user's WatchNotifications stream
 * and to wait on what the instances together have handled.
 */
import { randomUUID } from "node:crypto";
import type { TestScope } from "@meshwork/testing";
import type { ChannelModel } from "amqplib";
import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { NotificationService, type Notification } from "@meshwork/contracts/shop/notifications/v1/notifications";
import { createStatsBoard, startNotifications, type NotificationStats, type StatsBoard } from "@meshwork/notifications";
import { Code, createClient, createGrpcHost, createSilentLogger, openDatabase, RpcError, type Knex, type RunningService, type ServiceClient } from "@meshwork/platform";
import { amqpUrl, connectRabbit, createTestDatabase, deleteTestTopology, uniqueName } from "@meshwork/testing";
import { ORDER_EVENT_BINDINGS } from "@meshwork/notifications";
import type { Shop } from "./shop-harness.js";

/** A running instance, with the board it counts its work on. */
export interface NotificationsInstance extends RunningService {
  readonly stats: StatsBoard;
}

export interface NotificationsCluster {
  readonly instances: readonly NotificationsInstance[];
  /** One client per instance, in the same order. */
  readonly clients: readonly ServiceClient<typeof NotificationService>[];
  /** The work queue they share; its dead letters are in `${queue}.dead`. */
  readonly queue: string;
  /** The notifications database, for assertions. */
  readonly db: Knex;
  /** A connection of the test's own, to publish and inspect with. */
  readonly rabbit: ChannelModel;
  /** The instances' counters added up. */
  total(): NotificationStats;
  /** Resolves once `done(total())` holds, checked whenever any instance's counters change. */
  until(done: (total: NotificationStats) => boolean, timeoutMs?: number): Promise<NotificationStats>;
}

export interface ClusterOptions {
  readonly instances?: number;
  /** Extra environment for every instance. */
  readonly env?: Record<string, string>;
}

/**
 * Runs every clean-up step even when one fails (a broker restarted by another
 * test, say): a step skipped would leave servers and pools that keep the test
 * process alive. The failures are reported together at the end.
 */
export async function runAll(steps: readonly (() => unknown)[]): Promise<void> {
  const failures: unknown[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (error) {
      failures.push(error);
    }
  }
  if (failures.length > 0) throw new AggregateError(failures, `${failures.length} clean-up step(s) failed`);
}

const unimplemented = (): never => {
  throw new RpcError(Code.UNIMPLEMENTED, "this relay serves only GetJwks");
};

export async function startNotificationsCluster(t: TestScope, shop: Shop, options: ClusterOptions = {}): Promise<NotificationsCluster | undefined> {
  const url = await createTestDatabase(t, "notifications");
  if (!url) return undefined;
  const rabbit = await connectRabbit(t);
  if (!rabbit) return undefined;
  // Registered after the database and the connection, so it runs before they go (last in, first out).
  const cleanup: (() => unknown)[] = [];
  t.onTestFinished(() => runAll(cleanup.reverse()));

  // The shop harness does not say where identity listens, only hands out a
  // client; a relay of its public keys gives notifications a real identity
  // address (the tokens are identity's own, checked against its own keys).
  const relay = createGrpcHost({ name: "identity-keys-relay", log: createSilentLogger() });
  relay.add(IdentityService, { getJwks: () => shop.identity.getJwks({}), signUp: async () => unimplemented(), signIn: async () => unimplemented() });
  const relayPort = await relay.listen({ host: "127.0.0.1", port: 0 });
  relay.setServing(true);
  cleanup.push(() => relay.shutdown(0));

  const queue = uniqueName("notifications");
  const env: Record<string, string> = {
    NOTIFICATIONS_PORT: "0",
    NOTIFICATIONS_DATABASE_URL: url,
    NOTIFICATIONS_AMQP_URL: amqpUrl(),
    NOTIFICATIONS_EVENTS_EXCHANGE: shop.exchange,
    NOTIFICATIONS_QUEUE: queue,
    NOTIFICATIONS_IDENTITY_ADDR: `127.0.0.1:${relayPort}`,
    NOTIFICATIONS_RETRY_DELAYS_MS: "200,500",
    NOTIFICATIONS_WATCH_POLL_MS: "200",
    NOTIFICATIONS_LOG_LEVEL: "warn",
    ...options.env,
  };
  cleanup.push(async () => {
    await deleteTestTopology([{ exchange: shop.exchange, bindings: ORDER_EVENT_BINDINGS, queue, retryDelaysMs: [200, 500] }]);
  });

  const instances: NotificationsInstance[] = [];
  const clients: ServiceClient<typeof NotificationService>[] = [];
  for (let index = 0; index < (options.instances ?? 2); index++) {
    const stats = createStatsBoard();
    const instance = { ...(await startNotifications(env, { stats })), stats };
    cleanup.push(() => instance.shutdown.run("test done"));
    instances.push(instance);
    const client = createClient(NotificationService, { target: `127.0.0.1:${instance.port}` });
    cleanup.push(() => client.close());
    clients.push(client.client);
  }
  const database = await openDatabase({ url, migrations: [], migrationsTable: "assert_migrations", log: createSilentLogger() });
  cleanup.push(() => database.close());

  const total = (): NotificationStats =>
    instances
      .map((instance) => instance.stats.snapshot())
      .reduce((sum, stats) => ({
        handled: sum.handled + stats.handled,
        duplicates: sum.duplicates + stats.duplicates,
        recorded: sum.recorded + stats.recorded,
        refused: sum.refused + stats.refused,
        watchers: sum.watchers + stats.watchers,
      }));
  return {
    instances,
    clients,
    queue,
    db: database.knex,
    rabbit,
    total,
    until: async (done, timeoutMs = 20_000) => {
      await Promise.any(instances.map((instance) => instance.stats.until(() => done(total()), timeoutMs))).catch(() => {
        throw new Error(`the instances did not reach the expected state within ${timeoutMs} ms: ${JSON.stringify(total())}`);
      });
      return total();
    },
  };
}

/** A user's WatchNotifications stream, read in the background. */
export interface Feed {
  readonly received: readonly Notification[];
  /** Resolves once `done(received)` holds, checked at every arrival; rejects after timeoutMs or when the stream fails. */
  waitUntil(done: (received: readonly Notification[]) => boolean, what: string, timeoutMs?: number): Promise<readonly Notification[]>;
  /** How the stream ended: undefined when it completed or was cancelled by close(), else the error. */
  readonly ended: Promise<unknown>;
  close(): Promise<void>;
}

/**
 * Opens WatchNotifications and resolves once the server holds the stream
 * (the instances count one more watcher), so everything recorded from then
 * on must arrive on it.
 */
export async function watchNotifications(t: TestScope, cluster: NotificationsCluster, client: ServiceClient<typeof NotificationService>, headers: Record<string, string>): Promise<Feed> {
  const abort = new AbortController();
  const received: Notification[] = [];
  const waiters = new Set<() => void>();
  const before = cluster.total().watchers;
  let failure: unknown;
  const ended = (async () => {
    try {
      for await (const { notification } of client.watchNotifications({}, { headers, signal: abort.signal })) {
        if (notification) received.push(notification);
        for (const waiter of waiters) waiter();
      }
    } catch (error) {
      if (!abort.signal.aborted) failure = error;
    }
    for (const waiter of waiters) waiter();
    return failure;
  })();
  const close = async (): Promise<void> => {
    abort.abort();
    await ended;
  };
  t.onTestFinished(close);
  await Promise.race([cluster.until((total) => total.watchers > before, 10_000), ended.then((error) => Promise.reject(error ?? new Error("the stream ended before it was watching")))]);
  return {
    received,
    ended,
    close,
    waitUntil: (done, what, timeoutMs = 20_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (failure !== undefined) {
            finish();
            reject(failure);
          } else if (done(received)) {
            finish();
            resolve(received);
          }
        };
        const finish = (): void => {
          waiters.delete(check);
          clearTimeout(timer);
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`${what} did not happen within ${timeoutMs} ms; received: ${received.map((notification) => `${notification.subject} ${notification.orderId}`).join("; ")}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
  };
}

/** Places an order for the shopper (one tea tin, an approved card) and returns its id. */
export async function placeOrder(shop: Shop, headers: Record<string, string>, cardToken = "tok_visa"): Promise<string> {
  const { order } = await shop.orders.placeOrder({ idempotencyKey: `key-${randomUUID()}`, items: [{ productId: "MW-TEA-TIN", quantity: 1 }], paymentMethod: { cardToken } }, { headers });
  return order!.id;
}

/** How many of the notifications are about `orderId` with `subject`. */
export const countOf = (notifications: readonly Notification[], orderId: string, subject: string): number =>
  notifications.filter((notification) => notification.orderId === orderId && notification.subject === subject).length;
