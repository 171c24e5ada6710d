/**
 * The pure parts of the mesh's security checks (issue 13, points 7 and 9), on
 * hand-made inputs: how a route is chosen for a method, what the source reader
 * finds, what counts as overlapping networks. The rendered manifests are
 * checked in linkerd.security.int.test.ts.
 */
import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { CALL_GRAPH } from "../call-graph.js";
import { declaredMethodGrants, edgesFromSource, methodGrantsFromLinkerd, type KubeObject } from "../graph-checks.js";
import { expandMethods } from "../grpc-methods.js";
import { cidrsOverlap, isIpv6Cidr, retriedCodes, retryProblems } from "../mesh-checks.js";

const object = (kind: string, name: string, spec: unknown, annotations?: Record<string, string>): KubeObject =>
  ({ apiVersion: "test", kind, metadata: { name, ...(annotations ? { annotations } : {}) }, spec }) as KubeObject;
const server = object("Server", "catalog-grpc", { podSelector: { matchLabels: { app: "catalog" } }, port: "grpc", proxyProtocol: "gRPC" });
const policyRoute = (name: string, matches: unknown[]) => object("GRPCRoute", name, { parentRefs: [{ kind: "Server", name: "catalog-grpc" }], rules: [{ matches }] });
const authorize = (route: string, callers: string[]) => [
  object("MeshTLSAuthentication", `${route}-callers`, { identityRefs: callers.map((name) => ({ kind: "ServiceAccount", name })) }),
  object("AuthorizationPolicy", route, { targetRef: { kind: "GRPCRoute", name: route }, requiredAuthenticationRefs: [{ kind: "MeshTLSAuthentication", name: `${route}-callers` }] }),
];

describe("point 7: per-method grants as Linkerd chooses routes", () => {
  test("a route naming the method wins over one naming the whole service: its callers alone may call that method", () => {
    const objects = [
      server,
      policyRoute("catalog-all", [{ method: { service: "shop.catalog.v1.CatalogService" } }]),
      ...authorize("catalog-all", ["gateway"]),
      policyRoute("catalog-one", [{ method: { type: "Exact", service: "shop.catalog.v1.CatalogService", method: "GetProduct" } }]),
      ...authorize("catalog-one", ["orders"]),
    ];
    assert.deepEqual(methodGrantsFromLinkerd(objects), ["gateway->catalog shop.catalog.v1.CatalogService/ListProducts", "orders->catalog shop.catalog.v1.CatalogService/GetProduct"]);
  });

  test("authorizing the gRPC Server itself is refused: it would admit every route on the port", () => {
    const objects = [server, object("AuthorizationPolicy", "catalog-all", { targetRef: { kind: "Server", name: "catalog-grpc" }, requiredAuthenticationRefs: [] })];
    assert.throws(() => methodGrantsFromLinkerd(objects), /targets the gRPC Server catalog-grpc: authorize its GRPCRoutes instead/);
  });

  test("a route naming a service the contracts do not have is refused, not read as matching nothing", () => {
    const objects = [server, policyRoute("catalog-typo", [{ method: { service: "shop.catalog.v1.StockServce" } }]), ...authorize("catalog-typo", ["orders"])];
    assert.throws(() => methodGrantsFromLinkerd(objects), /StockServce is not a gRPC service of this mesh/);
  });

  test("the source reader finds a gateway that would forward StockService: the code would then disagree with the graph", () => {
    const routes = {
      path: "services/gateway/src/routes.ts",
      text: 'import { CatalogService, StockService } from "@meshwork/contracts/shop/catalog/v1/catalog";\nexport const FORWARDED = [{ service: CatalogService, backend: "catalog" }, { service: StockService, backend: "catalog" }];',
    };
    const found = edgesFromSource("gateway", [routes]);
    assert.deepEqual(
      declaredMethodGrants(found).filter((key) => !declaredMethodGrants(CALL_GRAPH).includes(key)),
      expandMethods(["shop.catalog.v1.StockService"]).map((method) => `gateway->catalog ${method}`),
    );
  });

  test("the source reader counts only the methods a client calls: orders' catalog client calling GetProduct is not granted ListProducts", () => {
    const main = {
      path: "services/orders/src/main.ts",
      text: 'import { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";\nconst catalog = createClient(CatalogService, {});\nawait catalog.client.getProduct({ productId });',
    };
    assert.deepEqual(edgesFromSource("orders", [main]), [{ caller: "orders", callee: "catalog", scope: "api", methods: ["shop.catalog.v1.CatalogService/GetProduct"] }]);
  });
});

describe("point 9: retry codes and networks", () => {
  test("retry codes are read the way Linkerd spells them, whatever the case", () => {
    assert.deepEqual(retriedCodes("Unavailable, DEADLINE_EXCEEDED,internal"), ["unavailable", "deadline-exceeded", "internal"]);
    assert.deepEqual(retriedCodes(undefined), []);
  });

  test("a Service-level retry annotation and a missing catch-all route are both reported", () => {
    const objects = [
      object("Service", "payments", {}, { "retry.linkerd.io/grpc": "unavailable" }),
      object(
        "GRPCRoute",
        "payments-writes",
        { parentRefs: [{ kind: "Service", name: "payments", port: 50054 }], rules: [{ matches: [{ method: { service: "shop.payments.v1.PaymentService" } }] }] },
        { "retry.linkerd.io/grpc": "unavailable" },
      ),
    ];
    const problems = retryProblems(objects, { service: "payments", port: 50054, served: ["shop.payments.v1.PaymentService"], reads: [] });
    assert.ok(problems.some((problem) => problem.startsWith("Service payments carries retry.linkerd.io/grpc")));
    assert.ok(problems.some((problem) => problem.includes("payments has 0 catch-all routes")));
  });

  test("overlap of networks: wide private ranges hold the pod networks, the kind node network does not", () => {
    assert.ok(cidrsOverlap("10.0.0.0/8", "10.244.0.0/16"));
    assert.ok(cidrsOverlap("192.168.0.0/16", "192.168.49.0/24"));
    assert.ok(!cidrsOverlap("172.18.0.0/16", "10.244.0.0/16"));
    assert.ok(!cidrsOverlap("172.18.0.0/16", "100.64.0.0/10"));
    assert.ok(cidrsOverlap("fc00::/7", "fd00:10:244::/56"));
    assert.ok(!cidrsOverlap("fc00:f853:ccd:e793::/64", "fd00:10:244::/56"));
    assert.ok(!cidrsOverlap("0.0.0.0/0", "::/0"), "families never overlap");
    assert.ok(isIpv6Cidr("::/0") && !isIpv6Cidr("0.0.0.0/0"));
  });
});
