import type { IncomingHttpHeaders } from "node:http2";
import { createContextValues, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { ServerReflection } from "@meshwork/contracts/grpc/reflection/v1/reflection";
import { Health } from "@meshwork/contracts/health/v1/health";
import { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { MeshService } from "@meshwork/contracts/shop/gateway/v1/mesh";
import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { NotificationService } from "@meshwork/contracts/shop/notifications/v1/notifications";
import { OrderService } from "@meshwork/contracts/shop/orders/v1/orders";
import { OrderService as OrderServiceV2 } from "@meshwork/contracts/shop/orders/v2/orders";
import { SalesService } from "@meshwork/contracts/shop/orders/v2/sales";
import {
  bindResilienceSettings,
  createClient,
  createLiveConfigFor,
  createTokenVerifier,
  parseAddressList,
  runMain,
  startEdgeService,
  tokenVerifierOptions,
  type BytesUnaryCall,
  type Endpoint,
  type RunningService,
  type StartOptions,
} from "@meshwork/platform";
import { createAccessLog } from "./access-log.js";
import { clientAddress, parseTrustedProxies } from "./client-address.js";
import { loadGatewayConfig, parseCorsOrigins } from "./config.js";
import { createCorsPolicy } from "./cors.js";
import { createDeprecationGate } from "./deprecation.js";
import { clientAddressKey } from "./edge-context.js";
import { createEdgeGate } from "./edge-gate.js";
import { createEdgeHandler } from "./edge-handler.js";
import { createEdgeServer } from "./edge-server.js";
import { createEdgeTelemetry } from "./edge-telemetry.js";
import { createForwardingImplementation, type CachedAnswer } from "./forward.js";
import { createGrpcPassthrough, passthroughMethods } from "./grpc-passthrough.js";
import { createHealthHandlers } from "./health.js";
import { bindRateLimitSettings } from "./live-settings.js";
import { createHealthChecker, createMeshHandlers, createMeshStatus } from "./mesh-status.js";
import { FORWARDED_SERVICES, MESH_SERVICE_NAMES, publicMethods, servedServices, type Backend } from "./routes.js";
import { createPublicErrors } from "./public-errors.js";
import { createReflectionHandlers } from "./reflection.js";
import { createStaticWeb, resolveWebDir } from "./static-web.js";
import { createStreamGuard } from "./stream-guard.js";
import { createKeyedRateLimiter } from "./token-bucket.js";
import { createTtlCache } from "./ttl-cache.js";

export interface GatewayOptions extends StartOptions {
  /**
   * Connect interceptors run inside the access log, around every RPC (the
   * web contract test uses one to break a response on purpose). With any
   * given, every call goes through Connect, the gRPC path's too, so they see it.
   */
  readonly interceptors?: readonly Interceptor[];
}

/** Deadline of the key fetch behind token verification; a call waits for it at most this long. */
const JWKS_FETCH_TIMEOUT_MS = 2000;

/**
 * The gateway's composition root: configuration, discovery and clients, the
 * Connect routes behind the edge checks, then the shared start-up (metrics,
 * listen, SERVING) and shutdown. `env` is the environment to read
 * (process.env when run on its own).
 */
export async function startGateway(env: Readonly<Record<string, string | undefined>>, options: GatewayOptions = {}): Promise<RunningService> {
  const config = loadGatewayConfig(env);
  const corsOrigins = parseCorsOrigins(config.corsOrigins);
  const trustedProxies = parseTrustedProxies(config.trustedProxies);
  const staticAddresses = {
    identity: parseAddressList("GATEWAY_IDENTITY_ADDR", config.identityAddr),
    catalog: parseAddressList("GATEWAY_CATALOG_ADDR", config.catalogAddr),
    orders: parseAddressList("GATEWAY_ORDERS_ADDR", config.ordersAddr),
    payments: parseAddressList("GATEWAY_PAYMENTS_ADDR", config.paymentsAddr),
    notifications: parseAddressList("GATEWAY_NOTIFICATIONS_ADDR", config.notificationsAddr),
  };
  return startEdgeService({
    name: "gateway",
    config,
    log: options.log,
    telemetry: options.telemetry,
    staticAddresses,
    async setup({ log, discovery, shutdown, telemetry }) {
      const live = createLiveConfigFor(config, env, log);
      shutdown.add("close live config", async () => live.close());
      const limits = bindRateLimitSettings(live);
      const resilience = Object.fromEntries(MESH_SERVICE_NAMES.map((backend) => [backend, bindResilienceSettings(live, "gateway", backend)]));
      await live.ready();

      // Each backend has its own breaker, bulkhead, retry budget and ejection,
      // tunable live under gateway/resilience/<backend>. Only calls that are
      // safe to send twice are retried: reads, and PlaceOrder (keyed).
      const clientOf = <S extends Parameters<typeof createClient>[0]>(service: S, backend: Backend, idempotentMethods: readonly string[]) =>
        createClient(service, {
          target: discovery.resolver.watch(backend),
          name: backend,
          log,
          defaultTimeoutMs: config.upstreamTimeoutMs,
          resilience: resilience[backend]!,
          idempotentMethods,
          telemetry: telemetry.forClient(backend),
        });
      const clients = {
        identity: clientOf(IdentityService, "identity", ["getJwks"]),
        catalog: clientOf(CatalogService, "catalog", ["listProducts", "getProduct"]),
        // PlaceOrder carries the client's idempotency key: sent again, it answers the same order.
        orders: clientOf(OrderService, "orders", ["placeOrder", "getOrder", "listOrders"]),
        notifications: clientOf(NotificationService, "notifications", ["listNotifications"]),
      };
      // The same backend's other API version: a client of its own (a client is
      // typed by one service), with the same retry rules as v1.
      const ordersV2 = clientOf(OrderServiceV2, "orders", ["placeOrder", "getOrder", "listOrders"]);
      // The sales view is a read: safe to send twice.
      const sales = clientOf(SalesService, "orders", ["getSalesReport"]);
      /** The client that forwards a routed service's calls. */
      const clientFor = (route: (typeof FORWARDED_SERVICES)[number]): { readonly client: object; readonly unaryBytes: BytesUnaryCall } =>
        route.service === OrderServiceV2 ? ordersV2 : route.service === SalesService ? sales : clients[route.backend];
      shutdown.add("close clients", async () =>
        [...Object.values(clients), ordersV2, sales].forEach((client) => {
          client.close();
        }),
      );

      const verifier = createTokenVerifier({
        fetchKeys: async () => (await clients.identity.client.getJwks({}, { timeoutMs: JWKS_FETCH_TIMEOUT_MS, parent: null })).keys,
        issuer: config.tokenIssuer,
        audience: config.tokenAudience,
        ...tokenVerifierOptions(config),
      });

      const healthChecker = createHealthChecker({ timeoutMs: config.healthCheckTimeoutMs });
      const meshStatus = createMeshStatus({
        services: MESH_SERVICE_NAMES,
        resolver: discovery.resolver,
        check: (address) => healthChecker.check(address),
        downstream: (service) => (service in clients ? clients[service as Backend].downstream : undefined),
      });
      shutdown.add("stop mesh status", async () => {
        meshStatus.close();
        healthChecker.close();
      });

      // Aborted when shutdown starts: streams end (clients reconnect to another
      // instance) and the gateway's own health turns NOT_SERVING.
      const stopping = new AbortController();
      let serving = false;
      const catalogCache =
        config.catalogCacheMs > 0 ? createTtlCache<CachedAnswer>({ ttlMs: config.catalogCacheMs, maxEntries: config.catalogCacheMaxEntries, staleMs: config.catalogStaleMs }) : undefined;

      const edgeTelemetry = createEdgeTelemetry(telemetry);
      const publicErrors = createPublicErrors(log);
      const served = servedServices(config);
      const streamGuard = createStreamGuard({ maxPerUser: config.maxStreamsPerUser });
      // One gate for both paths: Connect's, and the gRPC path's (grpc-passthrough.ts),
      // which reads the body itself and so needs no public-errors mark of when Connect does.
      const edgeChecks = edgeTelemetry.gate(
        createDeprecationGate({ metrics: telemetry.metrics })(
          createEdgeGate({
            publicMethods: publicMethods(config),
            verifier,
            perAddress: createKeyedRateLimiter({ limits: limits.perAddress, maxKeys: config.rateLimitMaxKeys }),
            perUser: createKeyedRateLimiter({ limits: limits.perUser, maxKeys: config.rateLimitMaxKeys }),
            log,
          }),
        ),
      );
      const gate = publicErrors.gate(edgeChecks);
      const contextValues = (peer: string | undefined, headers: IncomingHttpHeaders) => createContextValues().set(clientAddressKey, clientAddress(peer, headers["x-forwarded-for"], trustedProxies));
      const connect = connectNodeAdapter({
        routes(router) {
          for (const route of FORWARDED_SERVICES) {
            const implementation = createForwardingImplementation(route, {
              client: clientFor(route).client,
              upstreamTimeoutMs: config.upstreamTimeoutMs,
              streamsClosing: stopping.signal,
              log,
              ...(route.cacheable && catalogCache ? { cache: catalogCache } : {}),
            });
            // Built from the descriptor, so its type is the descriptor's only at run time.
            router.service(route.service, implementation as never);
          }
          // Off means not routed at all: UNIMPLEMENTED, and not listed by reflection or health.
          if (config.meshStatus !== "off") router.service(MeshService, createMeshHandlers(meshStatus, stopping.signal));
          router.service(Health, createHealthHandlers({ services: served.map((service) => service.typeName), serving: () => serving, changed: stopping.signal, watch: config.healthWatch !== "off" }));
          if (config.reflection !== "off") router.service(ServerReflection, createReflectionHandlers(served));
          // Last: the adapter serves router.handlers as they are when this returns.
          publicErrors.wrapHandlers(router.handlers);
        },
        readMaxBytes: config.maxRequestBytes,
        interceptors: [publicErrors.interceptor, edgeTelemetry.interceptor, createAccessLog(log), streamGuard.interceptor, ...(options.interceptors ?? [])],
        requestGate: gate,
        contextValues: (request) => contextValues(request.socket.remoteAddress, request.headers),
      });
      const passthroughOn = config.grpcPassthrough && (options.interceptors ?? []).length === 0;
      const grpc = passthroughOn
        ? createGrpcPassthrough({
            methods: passthroughMethods(FORWARDED_SERVICES, (route) => ({
              call: clientFor(route).unaryBytes,
              forwardAuthorization: route.forwardAuthorization,
              ...(route.cacheable && catalogCache ? { cache: catalogCache } : {}),
            })),
            gate: edgeChecks,
            telemetry: edgeTelemetry,
            contextValues,
            maxRequestBytes: config.maxRequestBytes,
            upstreamTimeoutMs: config.upstreamTimeoutMs,
            log,
          })
        : undefined;

      const server = createEdgeServer({
        handler: createEdgeHandler({
          connect,
          cors: createCorsPolicy(corsOrigins),
          maxRequestBytes: config.maxRequestBytes,
          serving: () => serving,
          ...(config.webDir ? { web: createStaticWeb({ root: resolveWebDir(config.webDir), onError: (err, url) => log.warn({ err, url }, "web file not served") }) } : {}),
        }),
        ...(grpc ? { streamHandler: grpc } : {}),
        log,
        maxStreamsPerConnection: config.maxStreamsPerConnection,
        idleTimeoutMs: config.idleTimeoutMs,
        maxHeaderBytes: config.maxHeaderBytes,
      });
      const endpoint: Endpoint = {
        inFlight: "requests",
        listen: (host, port) => server.listen(host, port),
        setServing(value) {
          serving = value;
          if (!value) stopping.abort();
        },
        async drain(graceMs) {
          const { drained, cutOff } = await server.close(graceMs);
          if (!drained) log.warn({ graceMs, requests: cutOff.slice(0, 20), count: cutOff.length }, "requests still in flight were cut off after the grace period");
        },
      };
      return {
        endpoint,
        logFields: {
          corsOrigins,
          grpcPassthrough: passthroughOn,
          catalogCacheMs: config.catalogCacheMs,
          meshStatus: config.meshStatus,
          reflection: config.reflection,
          trustedProxies: config.trustedProxies,
        },
      };
    },
  });
}

if (import.meta.filename === process.argv[1]) runMain("gateway", () => startGateway(process.env));
