/**
 * The gateway serves unary gRPC calls on its own path (grpc-passthrough.ts),
 * passing messages through as bytes, and everything else through Connect.
 * One behaviour suite, run against two gateways in front of the same
 * backends: one with the gRPC path (the default), one with
 * GATEWAY_GRPC_PASSTHROUGH=false, where Connect serves gRPC too. Each case
 * also checks, in the gateway's access log, which path served the call, so
 * the suite cannot pass by testing Connect twice.
 */
import assert from "node:assert/strict";
import { beforeAll, describe, test } from "vitest";
import { fromBinary, toBinary, create } from "@bufbuild/protobuf";
import { Code, type Client } from "@connectrpc/connect";
import { compressionGzip, createGrpcTransport } from "@connectrpc/connect-node";
import { CatalogService, GetProductRequestSchema, GetProductResponseSchema } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { NotificationService } from "@meshwork/contracts/shop/notifications/v1/notifications";
import { OrderService } from "@meshwork/contracts/shop/orders/v1/orders";
import { connectError, createSuiteScope } from "@meshwork/testing";
import {
  CLOSED_ADDRESS,
  connectClient,
  GENEROUS_LIMITS,
  grpcFrame,
  h2Post,
  nextEvent,
  nextLog,
  signedInShopper,
  startEmbeddedBackends,
  startNotificationsStandIn,
  startTestGateway,
  transportsFor,
  type NotificationsStandIn,
  type RunningTestGateway,
  type SeenCall,
} from "./gateway-harness.js";

const PATHS = [
  { name: "the gRPC path (the default)", passthrough: "true", via: "grpc-passthrough" },
  { name: "Connect (GATEWAY_GRPC_PASSTHROUGH=false)", passthrough: "false", via: "connect" },
] as const;

const GET_PRODUCT = "/shop.catalog.v1.CatalogService/GetProduct";
const MAX_REQUEST_BYTES = 4096;
/** Field 1, length-delimited, promising 5 bytes and carrying 1. */
const MALFORMED = Uint8Array.from([0x0a, 0x05, 0x41]);

describe("gRPC calls at the edge get the same answers on the gRPC path and through Connect", { timeout: 120_000 }, () => {
  const scope = createSuiteScope("the gateway's gRPC path");
  let notifications: NotificationsStandIn;
  let backendEnv: Record<string, string>;
  const gateways = new Map<string, RunningTestGateway>();
  let authorization: string;

  beforeAll(async () => {
    const backends = await startEmbeddedBackends(scope);
    notifications = await startNotificationsStandIn(scope);
    backendEnv = {
      GATEWAY_IDENTITY_ADDR: `127.0.0.1:${backends.identity}`,
      GATEWAY_CATALOG_ADDR: `127.0.0.1:${backends.catalog}`,
      GATEWAY_NOTIFICATIONS_ADDR: notifications.address,
      GATEWAY_ORDERS_ADDR: CLOSED_ADDRESS,
      GATEWAY_PAYMENTS_ADDR: CLOSED_ADDRESS,
    };
    for (const { passthrough } of PATHS) {
      gateways.set(
        passthrough,
        await startTestGateway(scope, {
          ...GENEROUS_LIMITS,
          ...backendEnv,
          GATEWAY_CATALOG_CACHE_MS: "0",
          GATEWAY_UPSTREAM_TIMEOUT_MS: "4000",
          GATEWAY_MAX_REQUEST_BYTES: String(MAX_REQUEST_BYTES),
          GATEWAY_GRPC_PASSTHROUGH: passthrough,
          // The access log (debug) names the path that served each call.
          GATEWAY_LOG_LEVEL: "debug",
        }),
      );
    }
    const first = gateways.get("true")!;
    ({ authorization } = await signedInShopper(connectClient(IdentityService, transportsFor(first.baseUrl)["Connect JSON over HTTP/1.1"])));
  }, 120_000);

  describe.each(PATHS)("$name", ({ passthrough, via }) => {
    let gateway: RunningTestGateway;
    let catalog: Client<typeof CatalogService>;
    let list: Client<typeof NotificationService>;
    let counter = 0;
    /** A request id of this case's own, and the access-log line the gateway writes for it. */
    const tracked = () => {
      const requestId = `grpc-path-${passthrough}-${++counter}`;
      const line = nextLog(gateway.logs, (entry) => entry.request_id === requestId && (entry.msg === "call answered" || entry.msg === "call failed"));
      return { requestId, served: async () => (await line).via };
    };

    beforeAll(() => {
      gateway = gateways.get(passthrough)!;
      const grpc = transportsFor(gateway.baseUrl)["gRPC over h2c"];
      catalog = connectClient(CatalogService, grpc);
      list = connectClient(NotificationService, grpc);
    });

    test("a unary call is answered with the backend's message and the caller's request id", async () => {
      const call = tracked();
      let echoed: string | null = null;
      const { product } = await catalog.getProduct({ productId: "MW-HEADLAMP" }, { headers: { "x-request-id": call.requestId }, onHeader: (headers) => (echoed = headers.get("x-request-id")) });
      assert.equal(product?.id, "MW-HEADLAMP");
      assert.equal(echoed, call.requestId);
      assert.equal(await call.served(), via);
    });

    test("a raw gRPC call gets the same message bytes as the catalog's answer decodes to, with status 0 in the trailers", async () => {
      const request = toBinary(GetProductRequestSchema, create(GetProductRequestSchema, { productId: "MW-HEADLAMP" }));
      const response = await h2Post(gateway.baseUrl, GET_PRODUCT, { "content-type": "application/grpc", te: "trailers" }, grpcFrame(0, request));
      assert.equal(response.status, 200);
      assert.equal(response.headers["content-type"], "application/grpc+proto");
      assert.equal(response.trailers["grpc-status"], "0");
      assert.equal(response.body.readUInt32BE(1), response.body.length - 5, "one whole frame");
      assert.equal(fromBinary(GetProductResponseSchema, response.body.subarray(5)).product?.id, "MW-HEADLAMP");
    });

    test("a backend's status comes back with its code, message and x-invalid-field", async () => {
      const call = tracked();
      const error = await connectError(list.listNotifications({ pageSize: 101 }, { headers: { authorization, "x-request-id": call.requestId } }));
      assert.equal(error.code, Code.InvalidArgument);
      assert.equal(error.rawMessage, "page_size: must be from 1 to 100");
      assert.equal(error.metadata.get("x-invalid-field"), "page_size");
      assert.equal(await call.served(), via);
    });

    test("without a token an authenticated RPC is UNAUTHENTICATED and no backend is called", async () => {
      const before = notifications.calls.length;
      const error = await connectError(list.listNotifications({}));
      assert.equal(error.code, Code.Unauthenticated);
      assert.match(error.rawMessage, /missing authorization header/);
      assert.equal(notifications.calls.length, before);
    });

    test("the backend gets the caller's token, request id, address and remaining deadline", async () => {
      const call = tracked();
      const seen = nextEvent<SeenCall>(notifications.events, "call");
      const { notifications: found } = await list.listNotifications({}, { headers: { authorization, "x-request-id": call.requestId }, timeoutMs: 1500 });
      assert.equal(found.length, 1);
      const arrived = await seen;
      assert.equal(arrived.requestId, call.requestId);
      assert.equal(arrived.authorization, authorization);
      assert.equal(arrived.clientAddress, "127.0.0.1");
      assert.ok(arrived.timeoutMs !== undefined && arrived.timeoutMs <= 1500 && arrived.timeoutMs > 1000, `deadline ${arrived.timeoutMs}`);
      assert.equal(await call.served(), via);
    });

    test("the caller's deadline passing ends the call with DEADLINE_EXCEEDED and cancels the backend's", async () => {
      const ended = nextEvent<boolean>(notifications.events, "hold-ended");
      const error = await connectError(list.listNotifications({ pageToken: "hold" }, { headers: { authorization }, timeoutMs: 300 }));
      assert.equal(error.code, Code.DeadlineExceeded);
      assert.equal(await ended, true, "the backend saw its call cancelled");
    });

    test("the caller hanging up cancels the backend's call", async () => {
      const held = nextEvent(notifications.events, "held");
      const ended = nextEvent<boolean>(notifications.events, "hold-ended");
      const hangUp = new AbortController();
      const pending = connectError(list.listNotifications({ pageToken: "hold" }, { headers: { authorization }, signal: hangUp.signal }));
      await held;
      hangUp.abort();
      assert.equal((await pending).code, Code.Canceled);
      assert.equal(await ended, true, "the backend saw its call cancelled");
    });

    test("a backend that cannot be reached is UNAVAILABLE with a generic message naming the request id; a deprecated version still says so", async () => {
      const call = tracked();
      const orders = connectClient(OrderService, transportsFor(gateway.baseUrl)["gRPC over h2c"]);
      const error = await connectError(orders.getOrder({ orderId: "00000000-0000-4000-8000-000000000000" }, { headers: { authorization, "x-request-id": call.requestId } }));
      assert.equal(error.code, Code.Unavailable);
      assert.equal(error.rawMessage, `the service is unavailable; try again (request id ${call.requestId})`);
      // A failed gRPC call's headers and trailers both arrive as the error's metadata.
      assert.match(error.metadata.get("deprecation") ?? "", /^@\d+$/, "shop.orders.v1 answers a Deprecation header");
      assert.ok(error.metadata.get("sunset"), "and a Sunset header");
      assert.equal(await call.served(), via);
    });

    test("a compressed request is left to Connect on either path, which answers it", async () => {
      const call = tracked();
      const gzip = connectClient(CatalogService, createGrpcTransport({ baseUrl: gateway.baseUrl, sendCompression: compressionGzip, compressMinBytes: 0 }));
      const { product } = await gzip.getProduct({ productId: "MW-HEADLAMP" }, { headers: { "x-request-id": call.requestId } });
      assert.equal(product?.id, "MW-HEADLAMP");
      assert.equal(await call.served(), "connect");
    });

    test("bodies that are not one valid message are refused, saying what is wrong, and the gateway goes on serving", async () => {
      const grpc = { "content-type": "application/grpc", te: "trailers" };
      const status = (response: Awaited<ReturnType<typeof h2Post>>) => ({
        code: Number(response.trailers["grpc-status"] ?? response.headers["grpc-status"]),
        message: decodeURIComponent(String(response.trailers["grpc-message"] ?? response.headers["grpc-message"] ?? "")),
      });
      const malformed = status(await h2Post(gateway.baseUrl, GET_PRODUCT, grpc, grpcFrame(0, MALFORMED)));
      assert.equal(malformed.code, Code.InvalidArgument, malformed.message);
      assert.match(malformed.message, /not a valid shop\.catalog\.v1\.GetProductRequest/);

      const large = status(await h2Post(gateway.baseUrl, GET_PRODUCT, grpc, grpcFrame(0, new Uint8Array(MAX_REQUEST_BYTES + 1))));
      assert.equal(large.code, Code.ResourceExhausted, large.message);
      assert.match(large.message, new RegExp(`larger than configured readMaxBytes ${MAX_REQUEST_BYTES}`));

      const truncated = status(await h2Post(gateway.baseUrl, GET_PRODUCT, grpc, grpcFrame(0, MALFORMED).subarray(0, 6)));
      assert.notEqual(truncated.code, 0, "a frame cut short is refused");
      assert.notEqual(truncated.code, Code.Internal, truncated.message);

      const { product } = await catalog.getProduct({ productId: "MW-HEADLAMP" });
      assert.equal(product?.id, "MW-HEADLAMP");
    });
  });

  test("shutdown waits for a call in flight on the gRPC path, then the gateway stops accepting", async (t) => {
    const stopping = await startTestGateway(t, { ...GENEROUS_LIMITS, ...backendEnv, GATEWAY_LOG_LEVEL: "debug" });
    const requestId = "grpc-path-shutdown";
    const line = nextLog(stopping.logs, (entry) => entry.request_id === requestId && entry.msg === "call answered");
    const held = nextEvent(notifications.events, "held");
    const inFlight = connectClient(NotificationService, transportsFor(stopping.baseUrl)["gRPC over h2c"]).listNotifications(
      { pageToken: "hold" },
      { headers: { authorization, "x-request-id": requestId } },
    );
    await held;
    const shutdown = stopping.shutdown();
    notifications.release();
    assert.equal((await inFlight).notifications.length, 1, "the call in flight was answered");
    assert.equal((await line).via, "grpc-passthrough");
    assert.equal(await shutdown, true, "drained: no call was cut off");
    const refused = await connectError(connectClient(CatalogService, transportsFor(stopping.baseUrl)["gRPC over h2c"]).getProduct({ productId: "MW-HEADLAMP" }));
    assert.equal(refused.code, Code.Unavailable);
  });
});
