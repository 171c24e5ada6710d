import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { NotificationService } from "@meshwork/contracts/shop/notifications/v1/notifications";
import {
  createAmqpTaskQueue,
  bindResilienceSettings,
  createClient,
  createLiveConfigFor,
  createMemoryBroker,
  createMemoryTaskQueue,
  createTokenVerifier,
  tokenVerifierOptions,
  createWatchHub,
  instrumentHandler,
  parseAddressList,
  registerQueueMetrics,
  runMain,
  startService,
  type MemoryBroker,
  type RunningService,
  type StartOptions,
  type TaskQueue,
} from "@meshwork/platform";
import { migrations } from "../migrations/index.js";
import { createKnexNotificationStore } from "./adapters/notification-store.knex.js";
import { loadNotificationsConfig } from "./config.js";
import { createOrderEventHandler } from "./event-handler.js";
import type { OrderEvent } from "./notifications.js";
import { createChangeFeed } from "./change-feed.js";
import { createNotificationHandlers, SETTLE_MS } from "./service.js";
import { createStatsBoard, type StatsBoard } from "./stats.js";

/** Routing keys of the order events this service turns into notifications (order.placed, order.confirmed, ...). */
export const ORDER_EVENT_BINDINGS = ["order.*"] as const;

export interface NotificationsOptions extends StartOptions {
  /** The in-process broker shared with orders in the all-in-one mode (used when no AMQP URL is set). */
  readonly broker?: MemoryBroker;
  /**
   * An in-process task queue shared by several instances in one process, so
   * they compete for one queue as on RabbitMQ (used when no AMQP URL is set;
   * wins over `broker`). Its owner closes it; each instance only stops its consumer.
   */
  readonly taskQueue?: TaskQueue;
  /** Where the instance counts what it handles, records and streams (tests read it); default: a board of its own. */
  readonly stats?: StatsBoard;
}

/** The notifications service's composition root. */
export async function startNotifications(env: Readonly<Record<string, string | undefined>>, options: NotificationsOptions = {}): Promise<RunningService> {
  const config = loadNotificationsConfig(env);
  const stats = options.stats ?? createStatsBoard();
  const closing = new AbortController();
  const running = await startService({
    name: "notifications",
    config,
    migrations,
    log: options.log,
    telemetry: options.telemetry,
    staticAddresses: { identity: parseAddressList("NOTIFICATIONS_IDENTITY_ADDR", config.identityAddr) },
    async setup({ database, host, discovery, shutdown, log, telemetry }) {
      const live = createLiveConfigFor(config, env, log);
      shutdown.add("close live config", async () => live.close());
      const identityResilience = bindResilienceSettings(live, "notifications", "identity");
      await live.ready();
      const identity = createClient(IdentityService, {
        target: discovery.resolver.watch("identity"),
        name: "identity",
        log,
        resilience: identityResilience,
        idempotentMethods: ["getJwks"],
        telemetry: telemetry.forClient("identity"),
      });
      shutdown.add("close clients", async () => identity.close());
      const verifier = createTokenVerifier({
        fetchKeys: async () => (await identity.client.getJwks({}, { timeoutMs: 2000, parent: null })).keys,
        issuer: config.tokenIssuer,
        audience: config.tokenAudience,
        ...tokenVerifierOptions(config),
      });

      const store = createKnexNotificationStore(database.knex);
      const hub = createWatchHub((count) => stats.setWatchers(count));
      // Notifications recorded by other instances wake this one's streams through
      // one poll for all of them; the first poll, before serving, sets "from now".
      const feed = createChangeFeed({ store, hub, intervalMs: config.watchPollMs, settleMs: SETTLE_MS, log });
      await feed.poll();
      feed.start();
      shutdown.add("stop change feed", () => feed.close());

      let queue: TaskQueue;
      if (config.amqpUrl) {
        queue = createAmqpTaskQueue({ url: config.amqpUrl, log });
        shutdown.add("close task queue", () => queue.close());
      } else if (options.taskQueue) {
        queue = options.taskQueue;
      } else {
        if (!options.broker) log.warn("no NOTIFICATIONS_AMQP_URL and no in-process broker: no order events will arrive");
        const own = createMemoryTaskQueue({ broker: options.broker ?? createMemoryBroker(), log });
        queue = own;
        shutdown.add("close task queue", () => own.close());
      }

      const events = createOrderEventHandler({ store, hub, stats, log });
      const consumer = queue.consume<OrderEvent>({
        exchange: config.eventsExchange,
        bindings: ORDER_EVENT_BINDINGS,
        queue: config.queue,
        retryDelaysMs: config.retryDelaysMs,
        prefetch: config.prefetch,
        parse: (body, contentType) => events.parse(body, contentType),
        // Consumer span (continuing the relay's publish), lag, and the order's request id on log lines.
        handle: instrumentHandler(telemetry, config.queue, (delivery) => events.handle(delivery)),
      });
      registerQueueMetrics(telemetry.metrics, queue, [config.queue, `${config.queue}.dead`]);
      shutdown.add("stop consuming", () => consumer.stop());
      // Bound before serving: events published from now on are queued for us.
      // Without a broker this waits (the adapter keeps reconnecting); say so.
      const waiting = setTimeout(() => log.warn({ queue: config.queue }, "still waiting for the broker to subscribe to order events"), 5000);
      try {
        await consumer.ready();
      } finally {
        clearTimeout(waiting);
      }
      log.info({ exchange: config.eventsExchange, queue: config.queue, broker: config.amqpUrl ? "amqp" : "in-process" }, "consuming order events");

      host.add(
        NotificationService,
        createNotificationHandlers({
          store,
          authenticate: (context) => verifier.authenticate(context),
          hub,
          watchPollMs: config.watchRereadMs,
          closing: closing.signal,
        }),
      );
    },
  });
  // Added last, so it runs first: endless streams would otherwise hold the
  // drain for the whole grace period, and clients should move elsewhere now.
  running.shutdown.add("end watch streams", async () => closing.abort());
  return running;
}

if (import.meta.filename === process.argv[1]) runMain("notifications", () => startNotifications(process.env));
