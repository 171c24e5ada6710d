/**
 * Point 6 of the security issue, at the edge: a malformed body is the
 * caller's error (INVALID_ARGUMENT, HTTP 400) on every protocol, and what a
 * public client reads of a failure never carries internal details; the
 * detail is in the gateway's log under the request id the client was given.
 */
import assert from "node:assert/strict";
import { beforeAll, describe, test } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { OrderService } from "@meshwork/contracts/shop/orders/v1/orders";
import { connectError, createSuiteScope } from "@meshwork/testing";
import {
  CLOSED_ADDRESS,
  connectClient,
  GENEROUS_LIMITS,
  grpcFrame,
  h2Post,
  nextLog,
  signedInShopper,
  startEmbeddedBackends,
  startNotificationsStandIn,
  startTestGateway,
  transportsFor,
} from "../e2e/gateway-harness.js";

// Field 1, length-delimited, promising 5 bytes and carrying 1.
const MALFORMED = Uint8Array.from([0x0a, 0x05, 0x41]);

describe("errors at the edge say what the caller did wrong and nothing of the inside", { timeout: 120_000 }, () => {
  const scope = createSuiteScope("public errors at the edge");
  let gateway: Awaited<ReturnType<typeof startTestGateway>>;

  beforeAll(async () => {
    const backends = await startEmbeddedBackends(scope);
    const notifications = await startNotificationsStandIn(scope);
    gateway = await startTestGateway(scope, {
      GATEWAY_IDENTITY_ADDR: `127.0.0.1:${backends.identity}`,
      GATEWAY_CATALOG_ADDR: `127.0.0.1:${backends.catalog}`,
      GATEWAY_NOTIFICATIONS_ADDR: notifications.address,
      // Nothing listens there: every orders call fails with grpc-js' "No connection established ... ECONNREFUSED 127.0.0.1:1".
      GATEWAY_ORDERS_ADDR: CLOSED_ADDRESS,
      GATEWAY_PAYMENTS_ADDR: CLOSED_ADDRESS,
      GATEWAY_CATALOG_CACHE_MS: "0",
      // Health Watch is this file's streaming example: served without a token here.
      GATEWAY_HEALTH_WATCH: "public",
      GATEWAY_LOG_LEVEL: "info",
      ...GENEROUS_LIMITS,
    });
  }, 120_000);

  test("a malformed binary body is HTTP 400 invalid_argument over Connect, naming the message type and the request id", async () => {
    const response = await fetch(`${gateway.baseUrl}/shop.catalog.v1.CatalogService/GetProduct`, { method: "POST", headers: { "content-type": "application/proto" }, body: MALFORMED });
    const requestId = response.headers.get("x-request-id") ?? "";
    const body = (await response.json()) as { code: string; message: string };
    assert.equal(response.status, 400, JSON.stringify(body));
    assert.equal(body.code, "invalid_argument");
    assert.match(body.message, /not a valid shop\.catalog\.v1\.GetProductRequest/);
    assert.ok(requestId.length > 0 && body.message.includes(requestId), body.message);
  });

  test("a malformed message in a well-formed envelope is INVALID_ARGUMENT over gRPC and gRPC-web, unary and streaming", async () => {
    const cases = [
      { path: "/shop.catalog.v1.CatalogService/GetProduct", contentType: "application/grpc" },
      { path: "/shop.catalog.v1.CatalogService/GetProduct", contentType: "application/grpc-web+proto" },
      { path: "/grpc.health.v1.Health/Watch", contentType: "application/grpc" },
      { path: "/grpc.health.v1.Health/Watch", contentType: "application/grpc-web+proto" },
    ];
    for (const { path, contentType } of cases) {
      const response = await h2Post(gateway.baseUrl, path, { "content-type": contentType, te: "trailers" }, grpcFrame(0, MALFORMED));
      let status: string | undefined;
      let message: string | undefined;
      if (contentType === "application/grpc") {
        status = String(response.trailers["grpc-status"] ?? response.headers["grpc-status"]);
        message = decodeURIComponent(String(response.trailers["grpc-message"] ?? response.headers["grpc-message"]));
      } else {
        // The gRPC-web status is the body's trailer message (flag 0x80).
        const trailer = response.body.subarray(response.body.lastIndexOf(0x80) + 5).toString();
        status = /grpc-status: ?(\d+)/.exec(trailer)?.[1];
        message = decodeURIComponent(/grpc-message: ?(.*)/.exec(trailer)?.[1]?.trim() ?? "");
      }
      assert.equal(status, String(Code.InvalidArgument), `${contentType} ${path}: ${status} ${message}`);
      assert.match(message ?? "", /not a valid/, `${contentType} ${path}`);
    }
  });

  test("an upstream failure reaches the client as UNAVAILABLE with a generic message and the request id; the detail is logged under that id", async () => {
    const json = transportsFor(gateway.baseUrl)["Connect JSON over HTTP/1.1"];
    const shopper = await signedInShopper(connectClient(IdentityService, json));
    const logged = nextLog(gateway.logs, (entry) => entry.msg === "upstream error detail withheld from the caller");
    const error = await connectError(connectClient(OrderService, json).getOrder({ orderId: "00000000-0000-4000-8000-000000000000" }, { headers: { authorization: shopper.authorization } }));
    const requestId = error.metadata.get("x-request-id") ?? "";
    assert.ok(requestId.length > 0, "the answer carries x-request-id");
    assert.equal(error.code, Code.Unavailable);
    assert.equal(error.rawMessage, `the service is unavailable; try again (request id ${requestId})`);
    assert.doesNotMatch(error.rawMessage, /ECONNREFUSED|127\.0\.0\.1|No connection/);
    const entry = await logged;
    assert.equal(entry.request_id, requestId);
    assert.match(String(entry.detail), /ECONNREFUSED|No connection/);
  });

  test("a domain error keeps its meaningful message", async () => {
    const json = transportsFor(gateway.baseUrl)["Connect JSON over HTTP/1.1"];
    const error = await connectError(connectClient(CatalogService, json).getProduct({ productId: "NO-SUCH-PRODUCT" }));
    assert.equal(error.code, Code.NotFound);
    assert.match(error.rawMessage, /NO-SUCH-PRODUCT/);
    assert.ok(error instanceof ConnectError);
  });
});
