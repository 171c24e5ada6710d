/**
 * The routing table of the edge: which services the gateway serves, which
 * backend answers each, and which RPCs need no token. Internal services
 * (shop.catalog.v1.StockService, shop.payments.v1.PaymentService) are not in
 * it, so there is no handler for them at all: a call gets UNIMPLEMENTED
 * (HTTP 404) before any backend is asked.
 */
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { ServerReflection } from "@meshwork/contracts/grpc/reflection/v1/reflection";
import { Health } from "@meshwork/contracts/health/v1/health";
import { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { MeshService } from "@meshwork/contracts/shop/gateway/v1/mesh";
import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { NotificationService } from "@meshwork/contracts/shop/notifications/v1/notifications";
import { OrderService } from "@meshwork/contracts/shop/orders/v1/orders";
import { OrderService as OrderServiceV2 } from "@meshwork/contracts/shop/orders/v2/orders";
import { SalesService } from "@meshwork/contracts/shop/orders/v2/sales";
import type { Exposure } from "./config.js";

/** Backends the gateway forwards to (payments is only ever health-checked). */
export type Backend = "identity" | "catalog" | "orders" | "notifications";

export interface ForwardedService {
  readonly service: DescService;
  readonly backend: Backend;
  /**
   * Pass the caller's `authorization` header on. Orders and notifications
   * verify the token again (defence in depth: a call that reaches them some
   * other way is still checked) and take the user from it, never from a field.
   */
  readonly forwardAuthorization: boolean;
  /** Unary answers are the same for every caller and may be served from a short-lived cache. */
  readonly cacheable: boolean;
}

export const FORWARDED_SERVICES: readonly ForwardedService[] = [
  { service: IdentityService, backend: "identity", forwardAuthorization: false, cacheable: false },
  { service: CatalogService, backend: "catalog", forwardAuthorization: false, cacheable: true },
  // Both versions while v1 lives (deprecated: see deprecation.ts); the orders service serves both.
  { service: OrderService, backend: "orders", forwardAuthorization: true, cacheable: false },
  { service: OrderServiceV2, backend: "orders", forwardAuthorization: true, cacheable: false },
  // The sales view (issue 15): any signed-in caller; per caller, so never from the shared cache.
  { service: SalesService, backend: "orders", forwardAuthorization: true, cacheable: false },
  { service: NotificationService, backend: "notifications", forwardAuthorization: true, cacheable: false },
];

/** Served by the gateway itself (server reflection too, see reflection.ts). */
export const GATEWAY_SERVICES: readonly DescService[] = [MeshService, Health];

/** Every service reachable through the gateway. */
export const ROUTED_SERVICES: readonly DescService[] = [...FORWARDED_SERVICES.map((route) => route.service), ...GATEWAY_SERVICES];

/** Services that exist in the mesh, for the mesh status. */
export const MESH_SERVICE_NAMES = ["catalog", "identity", "notifications", "orders", "payments"] as const;

/** "shop.catalog.v1.CatalogService/GetProduct". */
export const methodKey = (method: DescMethod): string => `${method.parent.typeName}/${method.name}`;

/** Who may call each optional part of the edge (see config.ts). */
export interface EdgeExposure {
  readonly meshStatus: Exposure;
  readonly reflection: Exposure;
  readonly healthWatch: Exposure;
}

/** The routed services this gateway serves with `exposure`: the mesh status only when it is not off. */
export function servedServices(exposure: Pick<EdgeExposure, "meshStatus">): readonly DescService[] {
  return ROUTED_SERVICES.filter((service) => service !== MeshService || exposure.meshStatus !== "off");
}

/**
 * RPCs served without a token: signing up and in (there is no token yet),
 * the public keys (anyone may verify a token), browsing the catalog, and the
 * gateway's own health Check and List, for probes. The mesh status (it names
 * internal addresses), server reflection (a map of the API) and health Watch
 * (a stream held open) are public only when configured so: the defaults
 * keep them off or behind a token, and only the development modes open them.
 * Everything else (orders, notifications) needs `authorization: Bearer <token>`.
 */
export function publicMethods(exposure: EdgeExposure): ReadonlySet<string> {
  const keys = [
    methodKey(IdentityService.method.signUp),
    methodKey(IdentityService.method.signIn),
    methodKey(IdentityService.method.getJwks),
    methodKey(CatalogService.method.listProducts),
    methodKey(CatalogService.method.getProduct),
    methodKey(Health.method.check),
    methodKey(Health.method.list),
    ...(exposure.healthWatch === "public" ? [methodKey(Health.method.watch)] : []),
    ...(exposure.reflection === "public" ? ServerReflection.methods.map(methodKey) : []),
    ...(exposure.meshStatus === "public" ? MeshService.methods.map(methodKey) : []),
  ];
  return new Set(keys);
}
