import { ConfigError, loadConfig, settings, telemetrySettings, tokenVerifierSettings, type ConfigOf } from "@meshwork/platform";

/** Who may call an optional part of the edge. */
export type Exposure = "off" | "authenticated" | "public";

const EXPOSURES: readonly string[] = ["off", "authenticated", "public"] satisfies Exposure[];
const exposure = () =>
  settings
    .text()
    .refine((value) => EXPOSURES.includes(value), "expected off, authenticated or public")
    .transform((value) => value as Exposure);

const address = (service: string, port: number, note = "") =>
  ({
    env: `GATEWAY_${service.toUpperCase()}_ADDR`,
    doc: `${service[0]!.toUpperCase()}${service.slice(1)} instances (host:port, comma-separated) when Consul is not used${note}.`,
    schema: settings.nonEmpty(),
    default: `127.0.0.1:${port}`,
  }) as const;

/**
 * Every start-up setting of the gateway, with its environment variable and
 * default. Rate limits are live settings instead (see live-settings.ts): an
 * operator turns them during an incident without a restart.
 */
export const gatewayConfigSpec = {
  host: { env: "GATEWAY_HOST", doc: "Interface the gateway binds (0.0.0.0 in containers).", schema: settings.nonEmpty(), default: "127.0.0.1" },
  port: { env: "GATEWAY_PORT", doc: "Port serving Connect, gRPC-web and gRPC over HTTP/1.1 and h2c (0 picks a free one).", schema: settings.port(), default: 8080 },
  logLevel: { env: "GATEWAY_LOG_LEVEL", doc: "Log level.", schema: settings.logLevel(), default: "info" },
  shutdownGraceMs: {
    env: "GATEWAY_SHUTDOWN_GRACE_MS",
    doc: "How long in-flight requests may run on after a shutdown signal; streams are ended at once.",
    schema: settings.durationMs(),
    default: 10_000,
  },
  consulAddr: { env: "CONSUL_HTTP_ADDR", doc: "Consul agent (host:port or URL); when set, backends are resolved and live settings read through it.", schema: settings.text(), default: "" },
  consulToken: { env: "CONSUL_HTTP_TOKEN", doc: "Consul ACL token.", schema: settings.text(), default: "", secret: true },
  identityAddr: address("identity", 50051),
  catalogAddr: address("catalog", 50052),
  ordersAddr: address("orders", 50053),
  paymentsAddr: address("payments", 50054, "; only health-checked for the mesh status, never routed"),
  notificationsAddr: address("notifications", 50055),
  upstreamTimeoutMs: {
    env: "GATEWAY_UPSTREAM_TIMEOUT_MS",
    doc: "Longest deadline of a unary backend call; a caller's shorter deadline wins. Streams only carry the caller's.",
    schema: settings.positiveInt(),
    default: 5000,
  },
  healthCheckTimeoutMs: {
    env: "GATEWAY_HEALTH_CHECK_TIMEOUT_MS",
    doc: "Deadline of each grpc.health.v1 Check the mesh status makes; an instance that does not answer in time is UNREACHABLE.",
    schema: settings.positiveInt(),
    default: 1000,
  },
  grpcPassthrough: {
    env: "GATEWAY_GRPC_PASSTHROUGH",
    doc: "Serve unary gRPC calls to the services without Connect, passing messages through as bytes (about half the edge's CPU per call); false sends every call through Connect.",
    schema: settings.bool(),
    default: true,
  },
  catalogCacheMs: {
    env: "GATEWAY_CATALOG_CACHE_MS",
    doc: "How long a ListProducts or GetProduct answer is served from the gateway's cache (0 turns the cache off).",
    schema: settings.durationMs(),
    default: 2000,
  },
  catalogStaleMs: {
    env: "GATEWAY_CATALOG_STALE_MS",
    doc: "How long past its freshness a catalog answer is still served when catalog is unavailable or its breaker is open (0: never; the answer carries x-meshwork-stale: true).",
    schema: settings.durationMs(),
    default: 300_000,
  },
  catalogCacheMaxEntries: { env: "GATEWAY_CATALOG_CACHE_MAX_ENTRIES", doc: "Most catalog answers kept; the least recently used goes first.", schema: settings.positiveInt(), default: 1000 },
  maxRequestBytes: {
    env: "GATEWAY_MAX_REQUEST_BYTES",
    doc: "Largest request message accepted, in bytes; larger ones get RESOURCE_EXHAUSTED (HTTP 413 for Connect unary with a Content-Length).",
    schema: settings.positiveInt(),
    default: 1024 * 1024,
  },
  corsOrigins: { env: "GATEWAY_CORS_ORIGINS", doc: "Web origins allowed to call from a browser (comma-separated, e.g. http://localhost:5173; * allows any).", schema: settings.text(), default: "" },
  tokenIssuer: { env: "GATEWAY_TOKEN_ISSUER", doc: "Issuer (iss) access tokens must carry.", schema: settings.nonEmpty(), default: "meshwork-identity" },
  tokenAudience: { env: "GATEWAY_TOKEN_AUDIENCE", doc: "Audience (aud) access tokens must carry.", schema: settings.nonEmpty(), default: "meshwork" },
  meshStatus: {
    env: "GATEWAY_MESH_STATUS",
    doc: "MeshService (the dashboard's view of every instance, naming internal addresses): off, authenticated (a signed-in user) or public. npm start and npm run mesh turn it public.",
    schema: exposure(),
    default: "off",
  },
  reflection: {
    env: "GATEWAY_REFLECTION",
    doc: "gRPC server reflection (grpcurl, buf curl without .proto files): off, authenticated or public. npm start and npm run mesh turn it public.",
    schema: exposure(),
    default: "off",
  },
  healthWatch: {
    env: "GATEWAY_HEALTH_WATCH",
    doc: "grpc.health.v1 Watch (a stream held open per caller): off, authenticated or public. Check and List are always public, for probes.",
    schema: exposure(),
    default: "authenticated",
  },
  trustedProxies: {
    env: "GATEWAY_TRUSTED_PROXIES",
    doc: "Networks of the proxies in front of the gateway (CIDRs or addresses, comma-separated, e.g. 10.0.0.0/8,fd00::/8): X-Forwarded-For is walked from the right past them to find the client address for the per-address rate limit; empty: the TCP peer is the client.",
    schema: settings.text(),
    default: "",
  },
  maxStreamsPerConnection: {
    env: "GATEWAY_MAX_STREAMS_PER_CONNECTION",
    doc: "Concurrent streams an HTTP/2 connection may open (its SETTINGS_MAX_CONCURRENT_STREAMS); a client opening more has them refused.",
    schema: settings.positiveInt(),
    default: 100,
  },
  maxStreamsPerUser: {
    env: "GATEWAY_MAX_STREAMS_PER_USER",
    doc: "Live streaming calls (WatchOrder, WatchNotifications, ...) one signed-in user may hold on this gateway instance; one more gets RESOURCE_EXHAUSTED.",
    schema: settings.positiveInt(),
    default: 16,
  },
  idleTimeoutMs: {
    env: "GATEWAY_IDLE_TIMEOUT_MS",
    doc: "An HTTP/2 connection with no open stream, or a kept-alive HTTP/1.1 connection between requests, is closed after this long; keep it above the idle timeout of a load balancer in front.",
    schema: settings.positiveInt(),
    default: 60_000,
  },
  maxHeaderBytes: {
    env: "GATEWAY_MAX_HEADER_BYTES",
    doc: "Largest request header block, in bytes (HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE, HTTP/1.1 max header size); larger requests get 431 (HTTP/1.1) or a refused stream (HTTP/2).",
    schema: settings.positiveInt(),
    default: 16 * 1024,
  },
  rateLimitMaxKeys: {
    env: "GATEWAY_RATE_LIMIT_MAX_KEYS",
    doc: "Most users and addresses the rate limiter tracks at once; the least recently seen is forgotten first.",
    schema: settings.positiveInt(),
    default: 100_000,
  },
  webDir: {
    env: "GATEWAY_WEB_DIR",
    doc: "Built web app (npm run build -w @meshwork/web) served to browsers on GET /, a relative path taken from the repository root; empty serves no web app.",
    schema: settings.text(),
    default: "web/dist",
  },
  liveConfigFile: {
    env: "GATEWAY_LIVE_CONFIG_FILE",
    doc: "JSON file of live settings (rate limits), re-read when it changes (without Consul); MESHWORK_LIVE_* variables otherwise.",
    schema: settings.text(),
    default: "",
  },
  ...telemetrySettings("GATEWAY", 9464),
  ...tokenVerifierSettings("GATEWAY"),
};

export type GatewayConfig = ConfigOf<typeof gatewayConfigSpec>;

/** Settings that were replaced by safer ones: still setting one is refused, so no deployment silently loses what it meant. */
const RETIRED_SETTINGS: Readonly<Record<string, string>> = {
  GATEWAY_TRUSTED_PROXY_HOPS: "GATEWAY_TRUSTED_PROXIES (the proxies' networks: a hop count let a client-written X-Forwarded-For entry through)",
  GATEWAY_MESH_STATUS_PUBLIC: "GATEWAY_MESH_STATUS (off, authenticated or public)",
};

export function loadGatewayConfig(env: Readonly<Record<string, string | undefined>>): GatewayConfig {
  const retired = Object.keys(RETIRED_SETTINGS).filter((name) => env[name] !== undefined);
  if (retired.length > 0) throw new ConfigError(retired.map((name) => `${name}: no longer read; use ${RETIRED_SETTINGS[name]}`));
  return loadConfig(gatewayConfigSpec, env);
}

/**
 * "http://a.example, https://b.example:8443" as a list of origins. Each must be
 * a bare origin (scheme, host, optional port; no path), because browsers send
 * exactly that in the Origin header and a path would never match.
 */
export function parseCorsOrigins(text: string): readonly string[] {
  const entries = text
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  return entries.map((entry) => {
    if (entry === "*") return entry;
    if (!URL.canParse(entry)) throw new Error(`GATEWAY_CORS_ORIGINS: "${entry}" is not an origin such as http://localhost:5173`);
    const url = new URL(entry);
    if ((url.protocol !== "http:" && url.protocol !== "https:") || url.origin !== entry.replace(/\/$/, "")) {
      throw new Error(`GATEWAY_CORS_ORIGINS: "${entry}" is not an origin such as http://localhost:5173 (scheme and host only)`);
    }
    return url.origin;
  });
}
