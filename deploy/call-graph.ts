/**
 * Who may call whom: the one declaration of the mesh's call graph.
 *
 * compose.yaml (networks and depends_on), the Linkerd authorization policies
 * in mesh/linkerd and the gRPC clients each service builds in its source are
 * all checked against this list (deploy/test/call-graph.test.ts). Adding a
 * client in code, a network or a policy without adding the edge here (or the
 * other way round) fails that test.
 */

export const APP_SERVICES = ["gateway", "identity", "catalog", "orders", "payments", "notifications"] as const;
export type AppService = (typeof APP_SERVICES)[number];

/**
 * What a caller may reach on the callee:
 * - "api": the callee's own shop.* services (and grpc.health.v1, and reflection);
 * - "health": grpc.health.v1.Health only.
 */
export type CallScope = "api" | "health";

export interface CallEdge {
  readonly caller: AppService;
  readonly callee: AppService;
  readonly scope: CallScope;
  /** Why the edge exists, for the reader of a policy. */
  readonly why: string;
}

export const CALL_GRAPH: readonly CallEdge[] = [
  { caller: "gateway", callee: "identity", scope: "api", why: "routes shop.identity.v1 and fetches the token signing keys" },
  { caller: "gateway", callee: "catalog", scope: "api", why: "routes shop.catalog.v1" },
  { caller: "gateway", callee: "orders", scope: "api", why: "routes shop.orders.v1" },
  { caller: "gateway", callee: "notifications", scope: "api", why: "routes shop.notifications.v1" },
  // A real gRPC connection (the mesh status page checks every service's
  // health), so it is authorized, but for grpc.health.v1 only: payments is
  // internal and never routed.
  { caller: "gateway", callee: "payments", scope: "health", why: "the mesh status health-checks payments; never routed" },
  { caller: "orders", callee: "catalog", scope: "api", why: "the saga reserves and releases stock; PlaceOrder checks products" },
  { caller: "orders", callee: "payments", scope: "api", why: "the saga authorizes and voids payments" },
  { caller: "orders", callee: "identity", scope: "api", why: "GetJwks, to verify access tokens itself" },
  { caller: "notifications", callee: "identity", scope: "api", why: "GetJwks, to verify access tokens itself" },
];

/**
 * The gRPC services (full names) each service serves beyond health and
 * reflection: what an "api" caller is authorized for. The gateway is the edge
 * and is reached from outside the mesh, not through this graph.
 */
export const SERVED_APIS: Readonly<Record<Exclude<AppService, "gateway">, readonly string[]>> = {
  identity: ["shop.identity.v1.IdentityService"],
  catalog: ["shop.catalog.v1.CatalogService", "shop.catalog.v1.StockService"],
  orders: ["shop.orders.v1.OrderService"],
  payments: ["shop.payments.v1.PaymentService"],
  notifications: ["shop.notifications.v1.NotificationService"],
};

/** Ports as the architecture fixes them: gRPC (the gateway's edge port) and metrics. */
export const SERVICE_PORTS: Readonly<Record<AppService, { readonly grpc: number; readonly metrics: number }>> = {
  gateway: { grpc: 8080, metrics: 9464 },
  identity: { grpc: 50051, metrics: 9465 },
  catalog: { grpc: 50052, metrics: 9466 },
  orders: { grpc: 50053, metrics: 9467 },
  payments: { grpc: 50054, metrics: 9468 },
  notifications: { grpc: 50055, metrics: 9469 },
};

export const isAppService = (name: string): name is AppService => (APP_SERVICES as readonly string[]).includes(name);

/** "caller->callee:scope" keys, sorted: the form every check compares. */
export const edgeKeys = (edges: readonly Pick<CallEdge, "caller" | "callee" | "scope">[]): string[] => [...new Set(edges.map((edge) => `${edge.caller}->${edge.callee}:${edge.scope}`))].sort();

export const callersOf = (callee: AppService, graph: readonly CallEdge[] = CALL_GRAPH, scopes: readonly CallScope[] = ["api", "health"]): AppService[] =>
  graph
    .filter((edge) => edge.callee === callee && scopes.includes(edge.scope))
    .map((edge) => edge.caller)
    .sort();
