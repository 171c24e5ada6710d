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
 * - "api": the methods the edge lists, and grpc.health.v1.Health;
 * - "health": grpc.health.v1.Health only.
 * Server reflection is never reachable inside the mesh: no service calls it,
 * and an operator's grpcurl goes through `kubectl port-forward`, which enters
 * the pod on loopback and so never meets the proxy's policy.
 */
export type CallScope = "api" | "health";

export interface CallEdge {
  readonly caller: AppService;
  readonly callee: AppService;
  readonly scope: CallScope;
  /**
   * The gRPC methods the caller calls, as its code calls them: "pkg.Service"
   * when it forwards every method of a service (the gateway), else
   * "pkg.Service/Method" each. Empty for "health". The Linkerd routes must
   * authorize exactly these, method by method.
   */
  readonly methods: readonly string[];
  /** Why the edge exists, for the reader of a policy. */
  readonly why: string;
}

const CATALOG = "shop.catalog.v1.CatalogService";
const STOCK = "shop.catalog.v1.StockService";
const IDENTITY = "shop.identity.v1.IdentityService";
const PAYMENTS = "shop.payments.v1.PaymentService";

export const CALL_GRAPH: readonly CallEdge[] = [
  // The gateway forwards every method of the services it routes (services/gateway/src/routes.ts) and no
  // other: never catalog's internal StockService.
  { caller: "gateway", callee: "identity", scope: "api", methods: [IDENTITY], why: "routes shop.identity.v1 and fetches the token signing keys" },
  { caller: "gateway", callee: "catalog", scope: "api", methods: [CATALOG], why: "routes shop.catalog.v1.CatalogService (never StockService)" },
  {
    caller: "gateway",
    callee: "orders",
    scope: "api",
    methods: ["shop.orders.v1.OrderService", "shop.orders.v2.OrderService", "shop.orders.v2.SalesService"],
    why: "routes shop.orders.v2 (orders and the sales report) and, until its sunset, the deprecated shop.orders.v1",
  },
  { caller: "gateway", callee: "notifications", scope: "api", methods: ["shop.notifications.v1.NotificationService"], why: "routes shop.notifications.v1" },
  // A real gRPC connection (the mesh status page checks every service's
  // health), so it is authorized, but for grpc.health.v1 only: payments is
  // internal and never routed.
  { caller: "gateway", callee: "payments", scope: "health", methods: [], why: "the mesh status health-checks payments; never routed" },
  {
    caller: "orders",
    callee: "catalog",
    scope: "api",
    methods: [`${CATALOG}/GetProduct`, `${STOCK}/ReserveStock`, `${STOCK}/ReleaseStock`],
    why: "the saga reserves and releases stock; PlaceOrder checks products",
  },
  { caller: "orders", callee: "payments", scope: "api", methods: [`${PAYMENTS}/AuthorizePayment`, `${PAYMENTS}/VoidPayment`], why: "the saga authorizes and voids payments" },
  { caller: "orders", callee: "identity", scope: "api", methods: [`${IDENTITY}/GetJwks`], why: "GetJwks, to verify access tokens itself" },
  { caller: "notifications", callee: "identity", scope: "api", methods: [`${IDENTITY}/GetJwks`], why: "GetJwks, to verify access tokens itself" },
];

/**
 * The unary methods that change nothing, per service: the only ones a proxy
 * may cancel and send again once they reached a handler
 * (`retry.linkerd.io/timeout`, or retrying a DEADLINE_EXCEEDED). Everything
 * else (writes, streams) is retried by the proxy at most on UNAVAILABLE.
 */
export const READ_METHODS: Readonly<Record<Exclude<AppService, "gateway">, readonly string[]>> = {
  identity: [`${IDENTITY}/GetJwks`],
  catalog: [`${CATALOG}/ListProducts`, `${CATALOG}/GetProduct`],
  orders: [
    "shop.orders.v1.OrderService/GetOrder",
    "shop.orders.v1.OrderService/ListOrders",
    "shop.orders.v2.OrderService/GetOrder",
    "shop.orders.v2.OrderService/ListOrders",
    "shop.orders.v2.SalesService/GetSalesReport",
  ],
  payments: [],
  notifications: ["shop.notifications.v1.NotificationService/ListNotifications"],
};

/**
 * The gRPC services (full names) each service serves beyond health and
 * reflection: what its callers' methods may come from. The gateway is the
 * edge and is reached from outside the mesh, not through this graph.
 */
export const SERVED_APIS: Readonly<Record<Exclude<AppService, "gateway">, readonly string[]>> = {
  identity: ["shop.identity.v1.IdentityService"],
  catalog: ["shop.catalog.v1.CatalogService", "shop.catalog.v1.StockService"],
  orders: ["shop.orders.v1.OrderService", "shop.orders.v2.OrderService", "shop.orders.v2.SalesService"],
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

/** "caller->callee pkg.Service/Method" keys, sorted, for every method an edge grants (services expanded from the contracts). */
export const methodKeys = (edges: readonly Pick<CallEdge, "caller" | "callee" | "methods">[], expand: (names: readonly string[]) => string[]): string[] =>
  [...new Set(edges.flatMap((edge) => expand(edge.methods).map((method) => `${edge.caller}->${edge.callee} ${method}`)))].sort();

export const callersOf = (callee: AppService, graph: readonly CallEdge[] = CALL_GRAPH, scopes: readonly CallScope[] = ["api", "health"]): AppService[] =>
  graph
    .filter((edge) => edge.callee === callee && scopes.includes(edge.scope))
    .map((edge) => edge.caller)
    .sort();
