import { loadConfig, serviceSettings, settings, tokenVerifierSettings, type ConfigOf } from "@meshwork/platform";

/** "1000,5000,30000" as [1000, 5000, 30000]; undefined when any entry is not a whole number of ms above 0. */
export function parseDelayList(text: string): number[] | undefined {
  const parts = text.split(",").map((part) => part.trim());
  if (parts.length === 0 || parts.some((part) => !/^\d+$/.test(part))) return undefined;
  const delays = parts.map(Number);
  return delays.every((delay) => Number.isSafeInteger(delay) && delay > 0) ? delays : undefined;
}

/** Every setting of the notifications service, with its environment variable and default. */
export const notificationsConfigSpec = {
  ...serviceSettings("NOTIFICATIONS", { port: 50055, metricsPort: 9469, dataDir: ".data/pglite" }),
  identityAddr: { env: "NOTIFICATIONS_IDENTITY_ADDR", doc: "Identity instances (for its public keys) when Consul is not used.", schema: settings.nonEmpty(), default: "127.0.0.1:50051" },
  tokenIssuer: { env: "NOTIFICATIONS_TOKEN_ISSUER", doc: "Issuer (iss) access tokens must carry.", schema: settings.nonEmpty(), default: "meshwork-identity" },
  tokenAudience: { env: "NOTIFICATIONS_TOKEN_AUDIENCE", doc: "Audience (aud) access tokens must carry.", schema: settings.nonEmpty(), default: "meshwork" },
  ...tokenVerifierSettings("NOTIFICATIONS"),
  amqpUrl: {
    env: "NOTIFICATIONS_AMQP_URL",
    doc: "RabbitMQ URL of the order-event queue; when unset, the in-process queue of the all-in-one mode.",
    schema: settings.text(),
    default: "",
    secret: true,
  },
  eventsExchange: { env: "NOTIFICATIONS_EVENTS_EXCHANGE", doc: "Topic exchange orders publishes its events to.", schema: settings.nonEmpty(), default: "shop.orders.v1" },
  queue: {
    env: "NOTIFICATIONS_QUEUE",
    doc: "Durable work queue shared by every instance (its retry queues and `.dead` queue are named after it).",
    schema: settings.nonEmpty(),
    default: "notifications.order-events",
  },
  retryDelaysMs: {
    env: "NOTIFICATIONS_RETRY_DELAYS_MS",
    doc: "Delay before each retry of a failing event, comma-separated; after the last one the event is dead-lettered.",
    schema: settings
      .nonEmpty()
      .refine((text) => parseDelayList(text) !== undefined, "expected whole milliseconds above 0, comma-separated, such as 1000,5000,30000")
      .transform((text) => parseDelayList(text) ?? []),
    default: "1000,5000,30000",
  },
  liveConfigFile: {
    env: "NOTIFICATIONS_LIVE_CONFIG_FILE",
    doc: "JSON file of live settings (resilience towards identity), re-read when it changes (without Consul); MESHWORK_LIVE_* variables otherwise.",
    schema: settings.text(),
    default: "",
  },
  prefetch: { env: "NOTIFICATIONS_PREFETCH", doc: "Events one instance handles at once (AMQP prefetch).", schema: settings.positiveInt(), default: 16 },
  watchPollMs: {
    env: "NOTIFICATIONS_WATCH_POLL_MS",
    doc: "How often this instance looks for notifications recorded by other instances: one query for all its WatchNotifications streams, waking only the streams of users who got one.",
    schema: settings.positiveInt(),
    default: 1000,
  },
  watchRereadMs: {
    env: "NOTIFICATIONS_WATCH_REREAD_MS",
    doc: "How often each WatchNotifications stream re-reads its user's notifications even without a wake-up (a safety net; wake-ups deliver them).",
    schema: settings.positiveInt(),
    default: 60_000,
  },
};

export type NotificationsConfig = ConfigOf<typeof notificationsConfigSpec>;

export const loadNotificationsConfig = (env: Readonly<Record<string, string | undefined>>): NotificationsConfig => loadConfig(notificationsConfigSpec, env);
