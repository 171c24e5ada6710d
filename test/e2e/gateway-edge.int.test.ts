/**
 * The gateway on port 0 in front of real identity and catalog services (on
 * embedded PGlite, so no infrastructure is needed) and a stand-in
 * NotificationService that records what reaches it: every protocol, the
 * edge's checks, what travels downstream, streaming, caching and shutdown.
 */
import assert from "node:assert/strict";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { beforeAll, describe, test } from "vitest";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { ServerReflection } from "@meshwork/contracts/grpc/reflection/v1/reflection";
import { Health, HealthCheckResponse_ServingStatus } from "@meshwork/contracts/health/v1/health";
import { CatalogService, StockService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { MeshService, ServingStatus } from "@meshwork/contracts/shop/gateway/v1/mesh";
import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { NotificationService } from "@meshwork/contracts/shop/notifications/v1/notifications";
import { Code as GrpcCode, createClient, isRpcError } from "@meshwork/platform";
import {
  CLOSED_ADDRESS,
  connectClient,
  GENEROUS_LIMITS,
  nextEvent,
  nextLog,
  signedInShopper,
  startEmbeddedBackends,
  startNotificationsStandIn,
  startTestGateway,
  transportsFor,
  type SeenCall,
} from "./gateway-harness.js";
import { connectError, createSuiteScope } from "@meshwork/testing";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe("the gateway at the edge, in front of embedded backends", { timeout: 120_000 }, () => {
  // One set of backends and one gateway for every case below, stopped after the last.
  const scope = createSuiteScope("the gateway at the edge");
  let backends: Awaited<ReturnType<typeof startEmbeddedBackends>>;
  let notifications: Awaited<ReturnType<typeof startNotificationsStandIn>>;
  let backendEnv: Record<string, string>;
  let gateway: Awaited<ReturnType<typeof startTestGateway>>;
  let transports: ReturnType<typeof transportsFor>;
  let json: Transport;
  let h2: Transport;
  let identity: Client<typeof IdentityService>;
  let shopper: { userId: string; authorization: string };
  let asShopper: { headers: { authorization: string } };

  beforeAll(async () => {
    backends = await startEmbeddedBackends(scope);
    notifications = await startNotificationsStandIn(scope);
    backendEnv = {
      GATEWAY_IDENTITY_ADDR: `127.0.0.1:${backends.identity}`,
      GATEWAY_CATALOG_ADDR: `127.0.0.1:${backends.catalog}`,
      GATEWAY_NOTIFICATIONS_ADDR: notifications.address,
      GATEWAY_ORDERS_ADDR: CLOSED_ADDRESS,
      GATEWAY_PAYMENTS_ADDR: CLOSED_ADDRESS,
    };
    gateway = await startTestGateway(scope, {
      ...backendEnv,
      ...GENEROUS_LIMITS,
      GATEWAY_CORS_ORIGINS: "http://shop.example",
      GATEWAY_UPSTREAM_TIMEOUT_MS: "4000",
      GATEWAY_CATALOG_CACHE_MS: "0",
      // Off by default (the security suite proves it); this suite tests what they serve.
      GATEWAY_MESH_STATUS: "public",
      GATEWAY_REFLECTION: "public",
    });
    transports = transportsFor(gateway.baseUrl);
    json = transports["Connect JSON over HTTP/1.1"];
    h2 = transports["Connect binary over h2c"];
    identity = connectClient(IdentityService, json);
    shopper = await signedInShopper(identity);
    asShopper = { headers: { authorization: shopper.authorization } };
  }, 120_000);

  test("every protocol and HTTP version reaches the catalog through one port, grpc-js clients too", async (t) => {
    for (const [name, transport] of Object.entries(transports)) {
      const { product } = await connectClient(CatalogService, transport).getProduct({ productId: "MW-HEADLAMP" });
      assert.equal(product?.name, "Headlamp", name);
    }
    const grpcJs = createClient(CatalogService, { target: `127.0.0.1:${gateway.port}` });
    t.onTestFinished(() => grpcJs.close());
    const { products } = await grpcJs.client.listProducts({ pageSize: 2 });
    assert.equal(products.length, 2);
  });

  test("a plain HTTP/1.1 POST with JSON (what curl sends) works", async () => {
    const response = await fetch(`${gateway.baseUrl}/shop.catalog.v1.CatalogService/GetProduct`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ productId: "MW-HEADLAMP" }),
    });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { product: { id: string; price: { amountMinor: string } } };
    assert.equal(body.product.id, "MW-HEADLAMP");
    assert.match(response.headers.get("x-request-id") ?? "", UUID);
  });

  test("internal services are unreachable: StockService.ReserveStock is UNIMPLEMENTED on every protocol", async (t) => {
    const reserve = { orderId: "o-edge", items: [{ productId: "MW-HEADLAMP", quantity: 1 }] };
    for (const [name, transport] of Object.entries(transports)) {
      const error = await connectError(connectClient(StockService, transport).reserveStock(reserve));
      assert.equal(error.code, Code.Unimplemented, name);
    }
    const grpcJs = createClient(StockService, { target: `127.0.0.1:${gateway.port}` });
    t.onTestFinished(() => grpcJs.close());
    await assert.rejects(grpcJs.client.reserveStock(reserve), (error) => isRpcError(error, GrpcCode.UNIMPLEMENTED));
  });

  test("without a valid token an authenticated RPC is UNAUTHENTICATED and no backend is called", async () => {
    const list = connectClient(NotificationService, json);
    const before = notifications.calls.length;
    assert.match((await connectError(list.listNotifications({}))).rawMessage, /missing authorization header/);
    const forged = await connectError(list.listNotifications({}, { headers: { authorization: "Bearer eyJhbGciOiJFUzI1NiJ9.e30.c2ln" } }));
    assert.equal(forged.code, Code.Unauthenticated);
    const malformed = await connectError(list.listNotifications({}, { headers: { authorization: "Basic YWRhOnB3" } }));
    assert.equal(malformed.code, Code.Unauthenticated);
    assert.equal(notifications.calls.length, before);
  });

  test("a verified call reaches the backend with the caller's token, request id and remaining deadline", async () => {
    const seen = nextEvent<SeenCall>(notifications.events, "call");
    let echoed: string | null = null;
    const { notifications: list } = await connectClient(NotificationService, json).listNotifications(
      {},
      { headers: { ...asShopper.headers, "x-request-id": "edge-test-42" }, timeoutMs: 1500, onHeader: (headers) => (echoed = headers.get("x-request-id")) },
    );
    assert.equal(list.length, 1);
    const call = await seen;
    assert.equal(echoed, "edge-test-42");
    assert.equal(call.requestId, "edge-test-42");
    assert.equal(call.authorization, shopper.authorization);
    assert.ok(call.timeoutMs !== undefined && call.timeoutMs <= 1500 && call.timeoutMs > 1000, `deadline ${call.timeoutMs}`);
  });

  test("a malformed request id is replaced, and the backend sees the id the caller is given", async () => {
    const seen = nextEvent<SeenCall>(notifications.events, "call");
    let echoed: string | null = null;
    await connectClient(NotificationService, h2).listNotifications({}, { headers: { ...asShopper.headers, "x-request-id": "not ok!" }, onHeader: (headers) => (echoed = headers.get("x-request-id")) });
    const call = await seen;
    assert.match(echoed ?? "", UUID);
    assert.equal(call.requestId, echoed);
    // No caller deadline: the gateway's own upstream bound (GATEWAY_UPSTREAM_TIMEOUT_MS=4000) applies.
    assert.ok(call.timeoutMs !== undefined && call.timeoutMs <= 4000 && call.timeoutMs > 3000, `deadline ${call.timeoutMs}`);
  });

  test("a backend's status comes back with its code, message and x-invalid-field, on Connect and on gRPC", async (t) => {
    const connectFailure = await connectError(connectClient(NotificationService, json).listNotifications({ pageSize: 101 }, asShopper));
    assert.equal(connectFailure.code, Code.InvalidArgument);
    assert.equal(connectFailure.rawMessage, "page_size: must be from 1 to 100");
    assert.equal(connectFailure.metadata.get("x-invalid-field"), "page_size");
    const grpcJs = createClient(NotificationService, { target: `127.0.0.1:${gateway.port}` });
    t.onTestFinished(() => grpcJs.close());
    await assert.rejects(grpcJs.client.listNotifications({ pageSize: 101 }, asShopper), (error) => {
      assert.ok(isRpcError(error, GrpcCode.INVALID_ARGUMENT));
      assert.equal(error.field, "page_size");
      return true;
    });
  });

  test("the caller's deadline cancels the backend call when it passes", async () => {
    const ended = nextEvent<boolean>(notifications.events, "hold-ended");
    const error = await connectError(connectClient(NotificationService, json).listNotifications({ pageToken: "hold" }, { ...asShopper, timeoutMs: 300 }));
    assert.equal(error.code, Code.DeadlineExceeded);
    assert.equal(await ended, true, "the backend saw its call cancelled");
  });

  test("a server stream passes each message through as the backend sends it, and hanging up cancels the backend's stream", async () => {
    for (const [name, transport] of Object.entries(transports)) {
      const hangUp = new AbortController();
      const started = nextEvent(notifications.events, "watch-started");
      const stream = connectClient(NotificationService, transport)
        .watchNotifications({}, { ...asShopper, signal: hangUp.signal })
        [Symbol.asyncIterator]();
      const first = stream.next();
      await started;
      notifications.push(`first via ${name}`);
      assert.equal((await first).value?.notification?.subject, `first via ${name}`);
      notifications.push(`second via ${name}`);
      assert.equal((await stream.next()).value?.notification?.subject, `second via ${name}`);
      const ended = nextEvent(notifications.events, "watch-ended");
      hangUp.abort();
      await ended;
      await stream.return?.();
    }
  });

  test("a 10 MB request is refused as RESOURCE_EXHAUSTED (HTTP 413 for Connect), and the gateway goes on serving", async () => {
    const huge = "x".repeat(10 * 1024 * 1024);
    const response = await fetch(`${gateway.baseUrl}/shop.identity.v1.IdentityService/SignUp`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "big@example.test", password: "correct horse battery", displayName: huge }),
    });
    assert.equal(response.status, 413);
    assert.equal(((await response.json()) as { code: string }).code, "resource_exhausted");
    for (const [name, transport] of Object.entries(transports)) {
      const error = await connectError(connectClient(IdentityService, transport).signUp({ email: "big@example.test", password: "correct horse battery", displayName: huge }));
      assert.equal(error.code, Code.ResourceExhausted, name);
      const { product } = await connectClient(CatalogService, transport).getProduct({ productId: "MW-HEADLAMP" });
      assert.equal(product?.id, "MW-HEADLAMP", `${name} still served`);
    }
  });

  test("CORS: a preflight from an allowed origin is answered, from another refused; answers expose the request id", async () => {
    const url = `${gateway.baseUrl}/shop.catalog.v1.CatalogService/GetProduct`;
    const preflight = (origin: string) =>
      fetch(url, { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type,connect-protocol-version,authorization" } });
    const allowed = await preflight("http://shop.example");
    assert.equal(allowed.status, 204);
    assert.equal(allowed.headers.get("access-control-allow-origin"), "http://shop.example");
    assert.match(allowed.headers.get("access-control-allow-headers") ?? "", /authorization/);
    const refused = await preflight("http://evil.example");
    assert.equal(refused.status, 403);
    assert.equal(refused.headers.get("access-control-allow-origin"), null);
    const actual = await fetch(url, { method: "POST", headers: { origin: "http://shop.example", "content-type": "application/json" }, body: '{"productId":"MW-HEADLAMP"}' });
    assert.equal(actual.headers.get("access-control-allow-origin"), "http://shop.example");
    assert.match(actual.headers.get("access-control-expose-headers") ?? "", /x-request-id/);
  });

  test("the mesh status lists every service with each instance's health; a dead one is UNREACHABLE", async () => {
    const mesh = connectClient(MeshService, json);
    const { services, observeTime } = await mesh.getMeshStatus({});
    assert.ok(observeTime);
    const byName = Object.fromEntries(services.map((service) => [service.name, service.instances.map((instance) => [instance.address, instance.status])]));
    assert.deepEqual(byName, {
      catalog: [[`127.0.0.1:${backends.catalog}`, ServingStatus.SERVING]],
      identity: [[`127.0.0.1:${backends.identity}`, ServingStatus.SERVING]],
      notifications: [[notifications.address, ServingStatus.SERVING]],
      orders: [[CLOSED_ADDRESS, ServingStatus.UNREACHABLE]],
      payments: [[CLOSED_ADDRESS, ServingStatus.UNREACHABLE]],
    });
    const breakers = Object.fromEntries(services.map((service) => [service.name, service.instances[0]?.breakerState]));
    // The gateway calls catalog, identity, notifications and orders (its breakers are closed
    // so far); payments it only health-checks, so it has no breaker towards it.
    assert.deepEqual(breakers, { catalog: "closed", identity: "closed", notifications: "closed", orders: "closed", payments: "" });
    const catalogInstance = services.find((service) => service.name === "catalog")!.instances[0]!;
    assert.ok(catalogInstance.latencyP50Ms > 0 && catalogInstance.latencyP99Ms >= catalogInstance.latencyP50Ms, "catalog calls made by earlier steps show their latency");
    let messages = 0;
    for await (const update of connectClient(MeshService, h2).watchMeshStatus({ intervalMs: 500 })) {
      assert.equal(update.services.length, 5);
      if (++messages === 2) break;
    }
    const invalid = await connectError(
      (async () => {
        for await (const update of mesh.watchMeshStatus({ intervalMs: 100 })) assert.fail(`no update expected, got ${update.services.length} services`);
      })(),
    );
    assert.equal(invalid.code, Code.InvalidArgument);
    assert.equal(invalid.metadata.get("x-invalid-field"), "interval_ms");
  });

  test("the gateway's own health: grpc.health.v1 Check and GET /healthz", async (t) => {
    const health = createClient(Health, { target: `127.0.0.1:${gateway.port}` });
    t.onTestFinished(() => health.close());
    assert.equal((await health.client.check({ service: "" })).status, HealthCheckResponse_ServingStatus.SERVING);
    assert.equal((await health.client.check({ service: "shop.catalog.v1.CatalogService" })).status, HealthCheckResponse_ServingStatus.SERVING);
    const probe = await fetch(`${gateway.baseUrl}/healthz`);
    assert.equal(probe.status, 200);
  });

  test("server reflection lists the routed services only and describes them, so grpcurl and buf curl need no .proto files", async () => {
    const reflection = connectClient(ServerReflection, transports["gRPC over h2c"]);
    async function* ask() {
      yield { messageRequest: { case: "listServices" as const, value: "" } };
      yield { messageRequest: { case: "fileContainingSymbol" as const, value: "shop.catalog.v1.CatalogService.GetProduct" } };
      yield { messageRequest: { case: "fileContainingSymbol" as const, value: "shop.catalog.v1.StockService" } };
    }
    const answers = [];
    for await (const answer of reflection.serverReflectionInfo(ask())) answers.push(answer.messageResponse);
    const [list, file, internal] = answers;
    assert.ok(list?.case === "listServicesResponse");
    const names = list.value.service.map((service) => service.name);
    assert.ok(names.includes("shop.orders.v1.OrderService") && names.includes("shop.gateway.v1.MeshService"), names.join(", "));
    assert.ok(!names.some((name) => name.endsWith("StockService") || name.endsWith("PaymentService")), names.join(", "));
    assert.ok(file?.case === "fileDescriptorResponse");
    const described = file.value.fileDescriptorProto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name);
    assert.ok(described.includes("shop/catalog/v1/catalog.proto") && described.includes("shop/common/v1/money.proto"), described.join(", "));
    assert.ok(internal?.case === "errorResponse");
    assert.equal(internal.value.errorCode, Code.NotFound);
  });

  test("over the per-address limit: RESOURCE_EXHAUSTED with a retry hint, in the header and the message", async (t) => {
    const limited = await startTestGateway(t, {
      ...backendEnv,
      ...GENEROUS_LIMITS,
      MESHWORK_LIVE_GATEWAY_RATE_LIMIT_PER_ADDRESS_RPS: "1",
      MESHWORK_LIVE_GATEWAY_RATE_LIMIT_PER_ADDRESS_BURST: "2",
    });
    const catalog = connectClient(CatalogService, createConnectTransport({ baseUrl: limited.baseUrl, httpVersion: "1.1" }));
    await catalog.getProduct({ productId: "MW-HEADLAMP" });
    await catalog.getProduct({ productId: "MW-HEADLAMP" });
    const error = await connectError(catalog.getProduct({ productId: "MW-HEADLAMP" }));
    assert.equal(error.code, Code.ResourceExhausted);
    assert.match(error.rawMessage, /rate limit exceeded for this address: retry after \d+ ms/);
    assert.equal(error.metadata.get("retry-after"), "1");
    const waitMs = Number(error.metadata.get("retry-after-ms"));
    assert.ok(waitMs > 0 && waitMs <= 1000, `retry-after-ms ${waitMs}`);
    const grpc = connectClient(CatalogService, createGrpcTransport({ baseUrl: limited.baseUrl }));
    const overGrpc = await connectError(grpc.getProduct({ productId: "MW-HEADLAMP" }));
    assert.equal(overGrpc.code, Code.ResourceExhausted);
    assert.equal(overGrpc.metadata.get("retry-after"), "1");
  });

  test("a limit changed in the live config file applies to the next request, without a restart", async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), "gateway-live-"));
    t.onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, "live.json");
    const replace = async (values: Record<string, unknown>): Promise<void> => {
      await writeFile(`${file}.tmp`, JSON.stringify(values));
      await rename(`${file}.tmp`, file);
    };
    await replace({ "gateway/rate-limit-per-address-rps": 1000, "gateway/rate-limit-per-address-burst": 1000 });
    const live = await startTestGateway(t, { ...backendEnv, ...GENEROUS_LIMITS, GATEWAY_LIVE_CONFIG_FILE: file, GATEWAY_LOG_LEVEL: "info" });
    const catalog = connectClient(CatalogService, createConnectTransport({ baseUrl: live.baseUrl, httpVersion: "1.1" }));
    for (let call = 0; call < 5; call++) await catalog.getProduct({ productId: "MW-HEADLAMP" });

    const applied = nextLog(live.logs, (entry) => entry.msg === "live config value changed" && entry.key === "gateway/rate-limit-per-address-burst");
    await replace({ "gateway/rate-limit-per-address-rps": 1, "gateway/rate-limit-per-address-burst": 1 });
    await applied;
    await catalog.getProduct({ productId: "MW-HEADLAMP" });
    assert.equal((await connectError(catalog.getProduct({ productId: "MW-HEADLAMP" }))).code, Code.ResourceExhausted);

    const refused = nextLog(live.logs, (entry) => entry.msg === "refused invalid live config value; keeping the previous one");
    await replace({ "gateway/rate-limit-per-address-rps": 0, "gateway/rate-limit-per-address-burst": 1 });
    await refused;
    // Still 1 request per second: of two calls in a row, the second is refused.
    await catalog.getProduct({ productId: "MW-HEADLAMP" }).catch(() => undefined);
    assert.equal((await connectError(catalog.getProduct({ productId: "MW-HEADLAMP" }))).code, Code.ResourceExhausted, "a rate of 0 is refused; 1 rps still holds");
  });

  test("the per-user limit counts each user apart", async (t) => {
    const limited = await startTestGateway(t, {
      ...backendEnv,
      ...GENEROUS_LIMITS,
      MESHWORK_LIVE_GATEWAY_RATE_LIMIT_PER_USER_RPS: "1",
      MESHWORK_LIVE_GATEWAY_RATE_LIMIT_PER_USER_BURST: "2",
    });
    const transport = createConnectTransport({ baseUrl: limited.baseUrl, httpVersion: "1.1" });
    const list = connectClient(NotificationService, transport);
    const other = await signedInShopper(connectClient(IdentityService, transport), "other");
    await list.listNotifications({}, asShopper);
    await list.listNotifications({}, asShopper);
    const error = await connectError(list.listNotifications({}, asShopper));
    assert.equal(error.code, Code.ResourceExhausted);
    assert.match(error.rawMessage, /for this user/);
    await list.listNotifications({}, { headers: { authorization: other.authorization } });
  });

  test("catalog reads are served from the cache for its configured time", async (t) => {
    const cached = await startTestGateway(t, { ...backendEnv, ...GENEROUS_LIMITS, GATEWAY_CATALOG_CACHE_MS: "60000" });
    const viaCache = connectClient(CatalogService, createConnectTransport({ baseUrl: cached.baseUrl, httpVersion: "1.1" }));
    const uncached = connectClient(CatalogService, json);
    const before = (await viaCache.getProduct({ productId: "MW-CAST-PAN" })).product!.stockAvailable;
    const stock = createClient(StockService, { target: `127.0.0.1:${backends.catalog}` });
    t.onTestFinished(() => stock.close());
    await stock.client.reserveStock({ orderId: `cache-${Date.now()}`, items: [{ productId: "MW-CAST-PAN", quantity: 3 }] });
    assert.equal((await viaCache.getProduct({ productId: "MW-CAST-PAN" })).product!.stockAvailable, before, "served from the cache");
    assert.equal((await uncached.getProduct({ productId: "MW-CAST-PAN" })).product!.stockAvailable, before - 3, "a gateway without cache sees the change");
  });

  test("shutdown ends open streams with UNAVAILABLE, lets a call in flight finish, then stops accepting", async (t) => {
    const stopping = await startTestGateway(t, { ...backendEnv, ...GENEROUS_LIMITS });
    const transport = createConnectTransport({ baseUrl: stopping.baseUrl, httpVersion: "2" });
    const client: Client<typeof NotificationService> = connectClient(NotificationService, transport);
    const started = nextEvent(notifications.events, "watch-started");
    const stream = client.watchNotifications({}, asShopper)[Symbol.asyncIterator]();
    const streamEnd = stream.next().then(
      () => assert.fail("the stream should end with an error"),
      (error: unknown) => ConnectError.from(error),
    );
    await started;
    const held = nextEvent(notifications.events, "held");
    const inFlight = client.listNotifications({ pageToken: "hold" }, asShopper);
    await held;

    const backendStreamEnded = nextEvent(notifications.events, "watch-ended");
    const shutdown = stopping.shutdown();
    const ended = await streamEnd;
    assert.equal(ended.code, Code.Unavailable);
    assert.match(ended.rawMessage, /shutting down/);
    await backendStreamEnded;

    notifications.release();
    assert.equal((await inFlight).notifications.length, 1, "the call in flight was answered");
    assert.equal(await shutdown, true);
    const refused = await connectError(connectClient(CatalogService, createGrpcWebTransport({ baseUrl: stopping.baseUrl, httpVersion: "1.1" })).getProduct({ productId: "MW-HEADLAMP" }));
    assert.equal(refused.code, Code.Unavailable);
  });
});
