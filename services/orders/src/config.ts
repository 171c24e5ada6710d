import { loadConfig, serviceSettings, settings, tokenVerifierSettings, type ConfigOf } from "@meshwork/platform";
import { parseCardTokenKey } from "./adapters/card-token-cipher.js";

const isCardTokenKey = (value: string): boolean => {
  try {
    parseCardTokenKey(value);
    return true;
  } catch {
    return false;
  }
};

/** Every setting of the orders service, with its environment variable and default. */
export const ordersConfigSpec = {
  ...serviceSettings("ORDERS", { port: 50053, metricsPort: 9467, dataDir: ".data/pglite" }),
  catalogAddr: { env: "ORDERS_CATALOG_ADDR", doc: "Catalog instances (host:port, comma-separated) when Consul is not used.", schema: settings.nonEmpty(), default: "127.0.0.1:50052" },
  paymentsAddr: { env: "ORDERS_PAYMENTS_ADDR", doc: "Payments instances when Consul is not used.", schema: settings.nonEmpty(), default: "127.0.0.1:50054" },
  identityAddr: { env: "ORDERS_IDENTITY_ADDR", doc: "Identity instances (for its public keys) when Consul is not used.", schema: settings.nonEmpty(), default: "127.0.0.1:50051" },
  amqpUrl: { env: "ORDERS_AMQP_URL", doc: "RabbitMQ URL for order events; when unset, the in-process broker of the all-in-one mode.", schema: settings.text(), default: "", secret: true },
  eventsExchange: { env: "ORDERS_EVENTS_EXCHANGE", doc: "Topic exchange order events are published to.", schema: settings.nonEmpty(), default: "shop.orders.v1" },
  tokenIssuer: { env: "ORDERS_TOKEN_ISSUER", doc: "Issuer (iss) access tokens must carry.", schema: settings.nonEmpty(), default: "meshwork-identity" },
  tokenAudience: { env: "ORDERS_TOKEN_AUDIENCE", doc: "Audience (aud) access tokens must carry.", schema: settings.nonEmpty(), default: "meshwork" },
  ...tokenVerifierSettings("ORDERS"),
  productKnownForMs: {
    env: "ORDERS_PRODUCT_KNOWN_FOR_MS",
    doc: "How long a product the catalog confirmed at a placement is taken as known without asking it again (0: ask at every placement). Unknown products are asked about every time; a product withdrawn meanwhile is refused by the saga's stock reservation.",
    schema: settings.nonNegativeInt(),
    default: 10_000,
  },
  sagaStepTimeoutMs: { env: "ORDERS_SAGA_STEP_TIMEOUT_MS", doc: "Deadline of each saga call to catalog or payments.", schema: settings.positiveInt(), default: 2000 },
  sagaMaxAttempts: {
    env: "ORDERS_SAGA_MAX_ATTEMPTS",
    doc: "Attempts of a forward saga step on transient errors before the order is compensated and FAILED.",
    schema: settings.positiveInt(),
    default: 6,
  },
  sagaBackoffBaseMs: { env: "ORDERS_SAGA_BACKOFF_BASE_MS", doc: "First retry back-off ceiling (doubles per attempt, full jitter).", schema: settings.positiveInt(), default: 100 },
  sagaBackoffMaxMs: { env: "ORDERS_SAGA_BACKOFF_MAX_MS", doc: "Largest retry back-off ceiling.", schema: settings.positiveInt(), default: 5000 },
  sagaLeaseMs: { env: "ORDERS_SAGA_LEASE_MS", doc: "How long an instance holds a saga without progress; a crashed instance's sagas resume after it.", schema: settings.positiveInt(), default: 5000 },
  sagaConcurrency: { env: "ORDERS_SAGA_CONCURRENCY", doc: "Sagas one instance works on at once.", schema: settings.positiveInt(), default: 64 },
  sagaPollMs: { env: "ORDERS_SAGA_POLL_MS", doc: "How often to look for due sagas (retries and recovered ones).", schema: settings.positiveInt(), default: 250 },
  salesProjectionPollMs: {
    env: "ORDERS_SALES_PROJECTION_POLL_MS",
    doc: "How often the sales view (an asynchronous projection of the order streams) looks for new events once caught up; every instance runs it, one batch at a time between them.",
    schema: settings.positiveInt(),
    default: 1000,
  },
  watchPollMs: { env: "ORDERS_WATCH_POLL_MS", doc: "How often a WatchOrder stream re-reads its order for changes made by other instances.", schema: settings.positiveInt(), default: 1000 },
  liveConfigFile: {
    env: "ORDERS_LIVE_CONFIG_FILE",
    doc: "JSON file of live settings (resilience towards catalog, stock, payments, identity), re-read when it changes (without Consul); MESHWORK_LIVE_* variables otherwise.",
    schema: settings.text(),
    default: "",
  },
  cardTokenKey: {
    env: "ORDERS_CARD_TOKEN_KEY",
    doc: "Key sealing card tokens at rest (AES-256-GCM): 32 random bytes, base64url (`openssl rand -base64 32`); every instance needs the same one. When unset, a key file is generated beside the data directory (.data/orders-card-token.key), which suits one machine only.",
    schema: settings.text().refine((value) => value === "" || isCardTokenKey(value), "expected 32 random bytes in base64url (43 characters, e.g. from `openssl rand -base64 32`)"),
    default: "",
    secret: true,
  },
  instanceId: { env: "ORDERS_INSTANCE_ID", doc: "Name of this instance as saga lease owner; generated when unset.", schema: settings.text(), default: "" },
};

export type OrdersConfig = ConfigOf<typeof ordersConfigSpec>;

export const loadOrdersConfig = (env: Readonly<Record<string, string | undefined>>): OrdersConfig => loadConfig(ordersConfigSpec, env);
