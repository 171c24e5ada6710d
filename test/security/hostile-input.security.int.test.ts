/**
 * Point 10 of the security issue: hostile input at every public RPC. The
 * real shop (identity, catalog, payments, orders on PostgreSQL, orders
 * publishing to RabbitMQ) behind the gateway; notifications is the recording
 * stand-in (its two RPCs only read). Every RPC of every generated contract,
 * over Connect JSON, Connect binary, gRPC-web and gRPC, gets malformed,
 * truncated, oversized, out-of-range, odd-unicode, unknown-field and
 * wrong-content-type requests, as an authenticated shopper (so bodies are
 * read and decoded, not refused at the door). Then: no 5xx, no INTERNAL or
 * UNKNOWN, refusals with the right code, the gateway still serving, and
 * nothing written in any database. The services' own grpc-js ports get the
 * malformed bytes too.
 */
import assert from "node:assert/strict";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Client, credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { createSuiteScope } from "@meshwork/testing";
import { beforeAll, describe, test } from "vitest";
import { connectClient, GENEROUS_LIMITS, signedInShopper, startNotificationsStandIn, startTestGateway, transportsFor } from "../e2e/gateway-harness.js";
import { startShop, type Shop } from "../e2e/shop-harness.js";
import { contractServices, createSender, PROTOCOLS, probeCases, type ProbeAnswer, type ProbeCase, type Protocol } from "./probe.js";

/** The gateway's read limit here: small, so oversized bodies are cheap to send. */
const MAX_REQUEST_BYTES = 64 * 1024;
/** How long a streaming call may stay open, saying nothing, before the probe moves on. */
const OPEN_MS = 1500;
const CONCURRENCY = 16;

/** Codes that say the server failed rather than the request: never an answer to input. */
const SERVER_FAILURES = new Set(["internal", "unknown", "data_loss", "unavailable", "deadline_exceeded"]);

async function rowCounts(shop: Shop): Promise<Record<string, number>> {
  const count = async (db: Shop["db"]["orders"], table: string): Promise<number> => Number((await db(table).count({ n: "*" }))[0]!.n);
  return {
    users: await count(shop.db.identity, "users"),
    orders: await count(shop.db.orders, "orders"),
    sagas: await count(shop.db.orders, "sagas"),
    outbox: await count(shop.db.orders, "outbox"),
    payments: await count(shop.db.payments, "payments"),
    reservations: await count(shop.db.catalog, "reservations"),
  };
}

/** Runs `work` over `items`, `limit` at a time. */
async function inPool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

function verdict(probe: ProbeCase, answer: ProbeAnswer, routed: boolean): string | undefined {
  if (answer.httpStatus >= 500) return `HTTP ${answer.httpStatus}`;
  if (SERVER_FAILURES.has(answer.code)) return `${answer.code}: ${answer.message}`;
  // A service the gateway does not route (catalog's StockService, payments) is not there for anyone.
  // The edge's size check (HTTP 413) and the content-type check come before routing.
  if (!routed) {
    const refusedEarlier = (probe.expect === "unsupported" && answer.httpStatus === 415) || (probe.expect === "too-large" && (answer.httpStatus === 413 || answer.code === "resource_exhausted"));
    return answer.code === "unimplemented" || answer.httpStatus === 404 || refusedEarlier ? undefined : `expected UNIMPLEMENTED, got ${answer.code}`;
  }
  switch (probe.expect) {
    case "invalid":
      if (answer.code !== "invalid_argument") return `expected invalid_argument, got ${answer.code} (HTTP ${answer.httpStatus}) ${answer.message}`;
      return answer.httpStatus === 200 || answer.httpStatus === 400 ? undefined : `invalid_argument with HTTP ${answer.httpStatus}`;
    case "too-large":
      return answer.code === "resource_exhausted" || answer.httpStatus === 413 ? undefined : `expected resource_exhausted or HTTP 413, got ${answer.code} (HTTP ${answer.httpStatus})`;
    case "unsupported":
      return answer.httpStatus === 415 ? undefined : `expected HTTP 415, got ${answer.httpStatus} ${answer.code}`;
    case "tolerated":
      return undefined;
  }
}

describe("hostile input at every public RPC, on every protocol", { timeout: 180_000 }, () => {
  const scope = createSuiteScope("hostile input");
  let shop: Shop;
  let gateway: Awaited<ReturnType<typeof startTestGateway>>;
  let notificationsAddress: string;
  let services: DescService[];
  let routed: Set<string>;
  let authorization: string;

  beforeAll(async () => {
    const started = await startShop(scope);
    assert.ok(started, "the probe needs PostgreSQL and RabbitMQ");
    shop = started;
    const notifications = await startNotificationsStandIn(scope);
    notificationsAddress = notifications.address;
    gateway = await startTestGateway(
      scope,
      {
        GATEWAY_IDENTITY_ADDR: shop.addresses.identity,
        GATEWAY_CATALOG_ADDR: shop.addresses.catalog,
        GATEWAY_ORDERS_ADDR: shop.addresses.orders,
        GATEWAY_PAYMENTS_ADDR: shop.addresses.payments,
        GATEWAY_NOTIFICATIONS_ADDR: notifications.address,
        GATEWAY_MAX_REQUEST_BYTES: String(MAX_REQUEST_BYTES),
        GATEWAY_CATALOG_CACHE_MS: "0",
        // Every handler the gateway can serve is probed, so the ones off by
        // default (as in compose and Kubernetes) are on, as in npm start.
        GATEWAY_MESH_STATUS: "public",
        GATEWAY_REFLECTION: "public",
        GATEWAY_HEALTH_WATCH: "public",
        ...GENEROUS_LIMITS,
      },
      shop.defer,
    );
    services = await contractServices();
    // What the gateway is meant to route, written out: what is not listed must
    // not be reachable, so a new route fails here until it is added on purpose.
    routed = new Set([
      "shop.identity.v1.IdentityService",
      "shop.catalog.v1.CatalogService",
      "shop.orders.v1.OrderService",
      "shop.orders.v2.OrderService",
      // The sales view (issue 15): signed-in callers only.
      "shop.orders.v2.SalesService",
      "shop.notifications.v1.NotificationService",
      "shop.gateway.v1.MeshService",
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
    ]);
    authorization = (await signedInShopper(connectClient(IdentityService, transportsFor(gateway.baseUrl)["Connect JSON over HTTP/1.1"]))).authorization;
  }, 180_000);

  test("no 5xx, no INTERNAL or UNKNOWN, the right refusal for each case; the gateway keeps serving and nothing is written", async () => {
    const before = await rowCounts(shop);
    const methods: DescMethod[] = services.flatMap((service) => service.methods);
    assert.ok(methods.length >= 20, `found only ${methods.length} RPCs in packages/contracts`);
    for (const typeName of routed)
      assert.ok(
        services.some((service) => service.typeName === typeName),
        `${typeName} is in the contracts`,
      );

    const calls: { method: DescMethod; protocol: Protocol; probe: ProbeCase }[] = [];
    for (const method of methods) for (const protocol of PROTOCOLS) for (const probe of probeCases(method, protocol, MAX_REQUEST_BYTES)) calls.push({ method, protocol, probe });

    const sender = createSender(gateway.baseUrl, OPEN_MS);
    const failures: string[] = [];
    const started = performance.now();
    try {
      await inPool(calls, CONCURRENCY, async ({ method, protocol, probe }) => {
        const label = `${method.parent.typeName}/${method.name} over ${protocol}, ${probe.name}`;
        try {
          const answer = await sender.send(method, protocol, probe, { authorization });
          const wrong = verdict(probe, answer, routed.has(method.parent.typeName));
          if (wrong) failures.push(`${label}: ${wrong}`);
        } catch (error) {
          failures.push(`${label}: the connection failed: ${String(error)}`);
        }
      });
    } catch (error) {
      sender.close();
      throw error;
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    // A bidi stream cannot travel over HTTP/1.1: connect-node says so with 505, and serves it over h2c (probed above).
    const bidi = methods.filter((method) => method.methodKind === "bidi_streaming");
    for (const method of bidi) {
      const [probe] = probeCases(method, "Connect binary", MAX_REQUEST_BYTES);
      const answer = await sender.sendOverHttp1(method, "Connect binary", probe!, { authorization });
      if (answer.httpStatus !== 505) failures.push(`${method.parent.typeName}/${method.name} over HTTP/1.1: expected 505, got ${answer.httpStatus}`);
    }
    sender.close();
    assert.deepEqual(failures, [], `${failures.length} of ${calls.length} probes (${methods.length} RPCs × ${PROTOCOLS.length} protocols) answered wrongly in ${seconds} s`);
    console.info(`hostile-input probe: ${calls.length} requests, ${methods.length} RPCs × ${PROTOCOLS.length} protocols, ${seconds} s`);

    // Still serving, on every protocol and HTTP version.
    for (const [name, transport] of Object.entries(transportsFor(gateway.baseUrl))) {
      const { product } = await connectClient(CatalogService, transport).getProduct({ productId: "MW-HEADLAMP" });
      assert.equal(product?.name, "Headlamp", name);
    }
    // The JSON keys __proto__ and constructor polluted nothing in this process (the gateway runs in it).
    assert.equal((Object.prototype as Record<string, unknown>).polluted, undefined);
    assert.deepEqual(await rowCounts(shop), before, "a hostile request wrote something");
  });

  test("each service's own gRPC port answers malformed bytes INVALID_ARGUMENT on every RPC", async () => {
    const addressOf = (service: DescService): string | undefined => {
      const owner = /^shop\.(\w+)\.v1\./.exec(service.typeName)?.[1];
      if (owner === "notifications") return notificationsAddress;
      return owner && owner in shop.addresses ? shop.addresses[owner as keyof Shop["addresses"]] : undefined;
    };
    const identity = (bytes: Buffer): Buffer => bytes;
    const failures: string[] = [];
    let probed = 0;
    for (const service of services) {
      const address = addressOf(service);
      if (!address) continue;
      const client = new Client(address, credentials.createInsecure());
      try {
        for (const method of service.methods) {
          const path = `/${service.typeName}/${method.name}`;
          const malformed = Buffer.from([0x0a, 0x05, 0x41]);
          const error = await new Promise<ServiceError | undefined>((resolve) => {
            if (method.methodKind === "unary") {
              client.makeUnaryRequest(path, identity, identity, malformed, new Metadata(), { deadline: Date.now() + 5000 }, (failure) => resolve(failure ?? undefined));
            } else {
              const call = client.makeServerStreamRequest(path, identity, identity, malformed, new Metadata(), { deadline: Date.now() + 5000 });
              call.on("data", () => resolve(undefined));
              call.on("error", resolve);
              call.on("end", () => resolve(undefined));
            }
          });
          probed++;
          if (error?.code !== 3) failures.push(`${path} at ${address}: ${error ? `${error.code} ${error.details}` : "accepted"}`);
        }
      } finally {
        client.close();
      }
    }
    assert.ok(probed >= 13, `probed only ${probed} RPCs`);
    assert.deepEqual(failures, []);
  });
});
