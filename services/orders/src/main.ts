import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { CatalogService, StockService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { OrderService } from "@meshwork/contracts/shop/orders/v1/orders";
import { OrderService as OrderServiceV2 } from "@meshwork/contracts/shop/orders/v2/orders";
import { SalesService } from "@meshwork/contracts/shop/orders/v2/sales";
import { PaymentService } from "@meshwork/contracts/shop/payments/v1/payments";
import {
  bindResilienceSettings,
  createAmqpPublisher,
  createClient,
  createProjectionLoop,
  createLiveConfigFor,
  createMemoryBroker,
  createOutboxRelay,
  createTokenVerifier,
  tokenVerifierOptions,
  createWatchHub,
  parseAddressList,
  registerOutboxMetrics,
  runMain,
  startService,
  type MemoryBroker,
  type RunningService,
  type StartOptions,
} from "@meshwork/platform";
import { migrations } from "../migrations/index.js";
import { createCardTokenCipher, resolveCardTokenKey } from "./adapters/card-token-cipher.js";
import { createKnexOrderStore } from "./adapters/order-store.knex.js";
import { createGrpcProductCheck } from "./adapters/product-check.grpc.js";
import { createGrpcSagaSteps } from "./adapters/saga-steps.grpc.js";
import { loadOrdersConfig } from "./config.js";
import { createOrderEventFactory, ORDER_EVENT_TYPE } from "./messages.js";
import { createSagaRunner } from "./saga-runner.js";
import { createSalesHandlers } from "./sales-service.js";
import { createSalesProjection, readSalesReport } from "./sales-view.js";
import { createOrderHandlers, createOrderOperations, type OrderServiceDeps } from "./service.js";
import { createOrderHandlersV2 } from "./service-v2.js";

export interface OrdersOptions extends StartOptions {
  /** The in-process broker shared with other services in the all-in-one mode (used when no AMQP URL is set). */
  readonly broker?: MemoryBroker;
}

/** The orders service's composition root. */
export async function startOrders(env: Readonly<Record<string, string | undefined>>, options: OrdersOptions = {}): Promise<RunningService> {
  const config = loadOrdersConfig(env);
  return startService({
    name: "orders",
    config,
    migrations,
    log: options.log,
    telemetry: options.telemetry,
    staticAddresses: {
      catalog: parseAddressList("ORDERS_CATALOG_ADDR", config.catalogAddr),
      payments: parseAddressList("ORDERS_PAYMENTS_ADDR", config.paymentsAddr),
      identity: parseAddressList("ORDERS_IDENTITY_ADDR", config.identityAddr),
    },
    async setup({ database, host, discovery, shutdown, log, telemetry }) {
      // Breaker, bulkhead, retry budget and ejection per downstream, tunable
      // live under orders/resilience/<name>. Every saga call is keyed by the
      // order id on the other side, so all of them may be sent twice.
      const live = createLiveConfigFor(config, env, log);
      shutdown.add("close live config", async () => live.close());
      const resilience = {
        catalog: bindResilienceSettings(live, "orders", "catalog"),
        stock: bindResilienceSettings(live, "orders", "stock"),
        payments: bindResilienceSettings(live, "orders", "payments"),
        identity: bindResilienceSettings(live, "orders", "identity"),
      };
      await live.ready();
      const clients = {
        catalog: createClient(CatalogService, {
          target: discovery.resolver.watch("catalog"),
          name: "catalog",
          log,
          resilience: resilience.catalog,
          idempotentMethods: ["getProduct"],
          telemetry: telemetry.forClient("catalog"),
        }),
        stock: createClient(StockService, {
          target: discovery.resolver.watch("catalog"),
          name: "stock",
          log,
          resilience: resilience.stock,
          idempotentMethods: ["reserveStock", "releaseStock"],
          telemetry: telemetry.forClient("stock"),
        }),
        payments: createClient(PaymentService, {
          target: discovery.resolver.watch("payments"),
          name: "payments",
          log,
          resilience: resilience.payments,
          idempotentMethods: ["authorizePayment", "voidPayment"],
          telemetry: telemetry.forClient("payments"),
        }),
        identity: createClient(IdentityService, {
          target: discovery.resolver.watch("identity"),
          name: "identity",
          log,
          resilience: resilience.identity,
          idempotentMethods: ["getJwks"],
          telemetry: telemetry.forClient("identity"),
        }),
      };
      shutdown.add("close clients", async () =>
        Object.values(clients).forEach((client) => {
          client.close();
        }),
      );

      const verifier = createTokenVerifier({
        fetchKeys: async () => (await clients.identity.client.getJwks({}, { timeoutMs: 2000, parent: null })).keys,
        issuer: config.tokenIssuer,
        audience: config.tokenAudience,
        ...tokenVerifierOptions(config),
      });

      const publisher = config.amqpUrl ? await createAmqpPublisher({ url: config.amqpUrl, log, exchanges: [config.eventsExchange] }) : (options.broker ?? createMemoryBroker()).publisher;
      shutdown.add("close publisher", () => publisher.close());
      const relay = createOutboxRelay({ db: database.knex, publisher, log, ...(telemetry.tracer ? { tracer: telemetry.tracer } : {}) });
      registerOutboxMetrics(telemetry.metrics, () => relay.stats());
      relay.start();
      shutdown.add("stop outbox relay", () => relay.stop());

      const event = createOrderEventFactory();
      const cardTokenKey = await resolveCardTokenKey({ configured: config.cardTokenKey, databaseUrl: config.databaseUrl, dataDir: config.dataDir });
      log.info({ from: cardTokenKey.from }, "card tokens sealed at rest");
      const store = createKnexOrderStore({
        db: database.knex,
        cardTokens: createCardTokenCipher(cardTokenKey.key),
        outbox: (aggregateId, item) => ({
          aggregateId,
          exchange: config.eventsExchange,
          routingKey: item.routingKey,
          type: ORDER_EVENT_TYPE,
          contentType: "application/json",
          body: item.body,
          headers: item.headers,
          messageId: item.messageId,
        }),
      });
      const watchHub = createWatchHub();
      const owner = config.instanceId || `orders-${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
      const runner = createSagaRunner({
        store,
        steps: createGrpcSagaSteps({ stock: clients.stock.client, payments: clients.payments.client }),
        policy: { maxAttempts: config.sagaMaxAttempts, backoffBaseMs: config.sagaBackoffBaseMs, backoffMaxMs: config.sagaBackoffMaxMs },
        event,
        log,
        owner,
        stepTimeoutMs: config.sagaStepTimeoutMs,
        leaseMs: config.sagaLeaseMs,
        concurrency: config.sagaConcurrency,
        pollIntervalMs: config.sagaPollMs,
        ...(telemetry.tracer ? { tracer: telemetry.tracer } : {}),
        onChange: (order) => {
          watchHub.notify(order.id);
          relay.nudge();
        },
      });
      // Before any saga runs: rows from before sealing that a saga still needs.
      const sealed = await store.sealClearCardTokens();
      if (sealed > 0) log.info({ sealed }, "sealed card tokens stored in clear by an earlier version");
      const pending = await store.pendingSagas();
      if (pending > 0) log.info({ pending }, "resuming unfinished sagas");
      runner.start();
      shutdown.add("stop sagas", () => runner.stop());

      // One implementation, two API versions: v1 (deprecated: the host adds
      // its Deprecation and Sunset metadata and counts its calls) and v2.
      const orderDeps: OrderServiceDeps = {
        store,
        authenticate: (context) => verifier.authenticate(context),
        products: createGrpcProductCheck(clients.catalog.client, { timeoutMs: config.sagaStepTimeoutMs, knownForMs: config.productKnownForMs }),
        event,
        watchHub,
        startSaga: (order, saga) => {
          relay.nudge();
          runner.kick(order.id, order, saga);
        },
        sagaLease: { owner, leaseMs: config.sagaLeaseMs },
        watchPollMs: config.watchPollMs,
      };
      // The sales view, kept asynchronously from the order streams (sales-view.ts).
      const salesProjection = createProjectionLoop({ db: database.knex, reader: createSalesProjection(), pollMs: config.salesProjectionPollMs, log });
      salesProjection.start();
      shutdown.add("stop sales projection", () => salesProjection.stop());

      const operations = createOrderOperations(orderDeps);
      host.add(OrderService, createOrderHandlers(orderDeps, operations));
      host.add(OrderServiceV2, createOrderHandlersV2(orderDeps, operations));
      host.add(SalesService, createSalesHandlers({ authenticate: orderDeps.authenticate, readReport: (range) => readSalesReport(database.knex, range) }));
    },
  });
}

if (import.meta.filename === process.argv[1]) runMain("orders", () => startOrders(process.env));
