import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { file_shop_catalog_v1_catalog } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { file_shop_payments_v1_payments } from "@meshwork/contracts/shop/payments/v1/payments";
import { loadGatewayConfig } from "./config.js";
import { FORWARDED_SERVICES, publicMethods, ROUTED_SERVICES, servedServices } from "./routes.js";

describe("routing table", () => {
  test("no internal service is routed: StockService and PaymentService have no handler at the edge", () => {
    const routed = new Set(ROUTED_SERVICES.map((service) => service.typeName));
    const internal = [...file_shop_catalog_v1_catalog.services, ...file_shop_payments_v1_payments.services].filter((service) => !routed.has(service.typeName));
    assert.deepEqual(internal.map((service) => service.typeName).sort(), ["shop.catalog.v1.StockService", "shop.payments.v1.PaymentService"]);
    assert.deepEqual([...routed].sort(), [
      "grpc.health.v1.Health",
      "shop.catalog.v1.CatalogService",
      "shop.gateway.v1.MeshService",
      "shop.identity.v1.IdentityService",
      "shop.notifications.v1.NotificationService",
      "shop.orders.v1.OrderService",
      "shop.orders.v2.OrderService",
      "shop.orders.v2.SalesService",
    ]);
  });

  test("only the catalog's answers are cacheable, and only orders (both API versions and the sales report) and notifications get the caller's token", () => {
    assert.deepEqual(
      FORWARDED_SERVICES.filter((route) => route.cacheable).map((route) => route.backend),
      ["catalog"],
    );
    assert.deepEqual(
      FORWARDED_SERVICES.filter((route) => route.forwardAuthorization).map((route) => route.backend),
      ["orders", "orders", "orders", "notifications"],
    );
  });

  test("public RPCs: sign-up, sign-in, keys, catalog reads and health Check and List; mesh status, reflection and health Watch only when made public", () => {
    const always = [
      "grpc.health.v1.Health/Check",
      "grpc.health.v1.Health/List",
      "shop.catalog.v1.CatalogService/GetProduct",
      "shop.catalog.v1.CatalogService/ListProducts",
      "shop.identity.v1.IdentityService/GetJwks",
      "shop.identity.v1.IdentityService/SignIn",
      "shop.identity.v1.IdentityService/SignUp",
    ];
    const defaults = loadGatewayConfig({});
    assert.deepEqual([...publicMethods(defaults)].sort(), always);
    assert.deepEqual([...publicMethods({ meshStatus: "authenticated", reflection: "off", healthWatch: "authenticated" })].sort(), always);
    assert.deepEqual(
      [...publicMethods({ meshStatus: "public", reflection: "public", healthWatch: "public" })].sort(),
      [
        ...always,
        "grpc.health.v1.Health/Watch",
        "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "shop.gateway.v1.MeshService/GetMeshStatus",
        "shop.gateway.v1.MeshService/WatchMeshStatus",
      ].sort(),
    );
  });

  test("the mesh status is not served at all when off (the default)", () => {
    const names = (services: readonly { typeName: string }[]) => services.map((service) => service.typeName);
    assert.ok(!names(servedServices(loadGatewayConfig({}))).includes("shop.gateway.v1.MeshService"));
    assert.ok(names(servedServices({ meshStatus: "authenticated" })).includes("shop.gateway.v1.MeshService"));
  });
});
