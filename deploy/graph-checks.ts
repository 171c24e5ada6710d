/**
 * Reads the call graph back out of the three places that must agree with
 * deploy/call-graph.ts: the services' source, compose.yaml and the rendered
 * Linkerd policy. Each reader returns edges; the tests compare them with the
 * declaration. Written by hand: no library knows this project's conventions.
 */
import { APP_SERVICES, isAppService, methodKeys, type AppService, type CallEdge, type CallScope } from "./call-graph.js";
import { clientMethodNames, expandMethods, HEALTH_SERVICE, methodsOfService } from "./grpc-methods.js";

export interface FoundEdge {
  readonly caller: AppService;
  readonly callee: AppService;
  readonly scope: CallScope;
  /** "pkg.Service" (all of it) or "pkg.Service/Method" names, as in CallEdge. */
  readonly methods: readonly string[];
}

export interface SourceFile {
  readonly path: string;
  readonly text: string;
}

const CONTRACT_IMPORT = /import\s*(?:type\s*)?\{([^}]*)\}\s*from\s*["']@meshwork\/contracts\/shop\/([a-z-]+)\/(v\d+)\/[^"']+["']/g;
// Any function whose name says "client" called with a contract service first:
// createClient(CatalogService, ...), the gateway's clientOf(IdentityService, ...).
const CLIENT_CALL = /\b(\w*[cC]lient\w*)\s*\(\s*([A-Za-z_$][\w$]*)\s*[,)]/g;
// The gateway's routing table: `{ service: CatalogService, backend: "catalog", ... }` forwards every
// method of that service (services/gateway/src/forward.ts walks the descriptor).
const FORWARD_ENTRY = /\{\s*service:\s*([A-Za-z_$][\w$]*)\s*,\s*backend:/g;
const WATCH_CALL = /\.watch\(\s*["'`]([a-z-]+)["'`]/g;
const ADDRESS_SETTING = /["'`]([A-Z]+)_([A-Z]+)_ADDR["'`]/g;

/**
 * The services `caller`'s source calls, from three kinds of evidence: a
 * client built for another service's contract (scope "api"), a discovery
 * watch on a service name, and a `<CALLER>_<CALLEE>_ADDR` address setting
 * (either of which alone means a connection used for health only).
 *
 * The methods of an "api" edge: every method of a service the caller
 * forwards wholesale (the gateway's routing table), and each method of a
 * client's service called by its client-side name (`.getProduct(`) anywhere
 * in the caller's source. A method name the caller uses for something else
 * would be counted too: the check errs towards asking for a grant, which
 * then shows up as a difference to explain, never towards hiding a call.
 */
export function edgesFromSource(caller: AppService, files: readonly SourceFile[]): FoundEdge[] {
  const api = new Set<AppService>();
  const reached = new Set<AppService>();
  const unknown: string[] = [];
  const clientServices = new Map<string, AppService>();
  const forwarded = new Map<string, AppService>();
  const note = (name: string, where: string, target: Set<AppService>) => {
    if (name === caller) return false;
    if (!isAppService(name)) {
      unknown.push(`${where}: "${name}" is not one of ${APP_SERVICES.join(", ")}`);
      return false;
    }
    target.add(name);
    return true;
  };
  for (const file of files) {
    const contractOf = new Map<string, { owner: string; service: string }>();
    for (const [, names, owner, version] of file.text.matchAll(CONTRACT_IMPORT)) {
      for (const part of names!.split(",")) {
        const [imported, local] = part
          .trim()
          .replace(/^type\s+/, "")
          .split(/\s+as\s+/)
          .map((name) => name.trim());
        if (imported) contractOf.set(local ?? imported, { owner: owner!, service: `shop.${owner}.${version}.${imported}` });
      }
    }
    for (const [, , argument] of file.text.matchAll(CLIENT_CALL)) {
      const contract = contractOf.get(argument!);
      if (contract !== undefined && note(contract.owner, `${file.path}: client of ${argument}`, api)) clientServices.set(contract.service, contract.owner as AppService);
    }
    for (const [, argument] of file.text.matchAll(FORWARD_ENTRY)) {
      const contract = contractOf.get(argument!);
      if (contract !== undefined && note(contract.owner, `${file.path}: forwards ${argument}`, api)) forwarded.set(contract.service, contract.owner as AppService);
    }
    for (const [, name] of file.text.matchAll(WATCH_CALL)) note(name!, `${file.path}: discovery watch`, reached);
    for (const [, owner, name] of file.text.matchAll(ADDRESS_SETTING)) {
      if (owner!.toLowerCase() === caller) note(name!.toLowerCase(), `${file.path}: ${owner}_${name}_ADDR`, reached);
    }
  }
  if (unknown.length > 0) throw new Error(`${caller}'s source names services the graph does not know:\n${unknown.join("\n")}`);
  const methods = new Map<AppService, Set<string>>();
  const grant = (callee: AppService, name: string) => {
    if (!methods.has(callee)) methods.set(callee, new Set());
    methods.get(callee)!.add(name);
  };
  for (const [service, callee] of forwarded) grant(callee, service);
  for (const [service, callee] of clientServices) {
    for (const [localName, method] of clientMethodNames(service)) {
      const call = new RegExp(`\\.${localName}\\s*\\(`);
      if (files.some((file) => call.test(file.text))) grant(callee, method);
    }
  }
  const edges: FoundEdge[] = [...api].map((callee) => ({ caller, callee, scope: "api", methods: [...(methods.get(callee) ?? [])].sort() }));
  for (const callee of reached) if (!api.has(callee)) edges.push({ caller, callee, scope: "health", methods: [] });
  return edges;
}

/** A compose service's app service: "notifications-2" is a replica of "notifications". */
export function appServiceOf(composeName: string): AppService | undefined {
  const base = composeName.replace(/-\d+$/, "");
  return isAppService(base) ? base : undefined;
}

interface ComposeService {
  readonly networks?: readonly string[] | Record<string, unknown>;
  readonly depends_on?: readonly string[] | Record<string, unknown>;
}
export interface ComposeDocument {
  readonly services: Record<string, ComposeService>;
  readonly networks?: Record<string, unknown>;
}

const namesOf = (value: readonly string[] | Record<string, unknown> | undefined): string[] => (value === undefined ? [] : Array.isArray(value) ? [...value] : Object.keys(value));

/**
 * Caller/callee pairs as compose allows them: joining the network named after
 * a service means calling it. A network named after no service may hold at
 * most one app service (else those could all call each other).
 */
export function pairsFromComposeNetworks(compose: ComposeDocument): string[] {
  const members = new Map<string, Set<AppService>>();
  for (const [name, service] of Object.entries(compose.services)) {
    const app = appServiceOf(name);
    if (!app) continue;
    const joined = namesOf(service.networks);
    if (joined.length === 0) throw new Error(`compose service ${name} joins no network: it would land on the shared default network`);
    for (const network of joined) {
      if (!members.has(network)) members.set(network, new Set());
      members.get(network)!.add(app);
    }
  }
  const pairs = new Set<string>();
  for (const [network, apps] of members) {
    if (isAppService(network)) {
      for (const app of apps) if (app !== network) pairs.add(`${app}->${network}`);
    } else if (apps.size > 1) {
      throw new Error(`compose network ${network} is named after no service yet joins ${[...apps].sort().join(", ")}: they could all call each other`);
    }
  }
  return [...pairs].sort();
}

/** Caller/callee pairs from depends_on between app services. */
export function pairsFromComposeDependencies(compose: ComposeDocument): string[] {
  const pairs = new Set<string>();
  for (const [name, service] of Object.entries(compose.services)) {
    const caller = appServiceOf(name);
    if (!caller) continue;
    for (const dependency of namesOf(service.depends_on)) {
      const callee = appServiceOf(dependency);
      if (callee && callee !== caller) pairs.add(`${caller}->${callee}`);
    }
  }
  return [...pairs].sort();
}

export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Record<string, string> };
  readonly spec?: any;
}

/** Workloads that are not app services but have their own authorization (data stores). */
export const DATA_WORKLOADS: readonly string[] = ["postgres", "rabbitmq"];

/** The ServiceAccounts authorized on each data store's Server, sorted. */
export function dataClientsFromLinkerd(objects: readonly KubeObject[]): Record<string, string[]> {
  const clients: Record<string, string[]> = {};
  for (const policy of objects.filter((object) => object.kind === "AuthorizationPolicy" && object.spec?.targetRef?.kind === "Server")) {
    const server = objects.find((object) => object.kind === "Server" && object.metadata.name === policy.spec.targetRef.name);
    const app = server?.spec?.podSelector?.matchLabels?.app;
    if (!DATA_WORKLOADS.includes(app)) continue;
    for (const ref of policy.spec.requiredAuthenticationRefs ?? []) {
      const authentication = objects.find((object) => object.kind === ref.kind && object.metadata.name === ref.name);
      for (const identity of authentication?.spec?.identityRefs ?? []) {
        clients[app] ??= [];
        clients[app].push(identity.name);
      }
    }
  }
  for (const list of Object.values(clients)) list.sort();
  return clients;
}

/** The gRPC services a policy GRPCRoute matches (method.service of each match). */
export function routeServices(route: KubeObject): string[] {
  const services: string[] = [];
  for (const rule of route.spec?.rules ?? []) {
    for (const match of rule.matches ?? []) {
      const service = match.method?.service;
      if (typeof service !== "string") throw new Error(`GRPCRoute ${route.metadata.name}: every match must name a gRPC service (method.service)`);
      services.push(service);
    }
  }
  return services.sort();
}

interface RouteMatch {
  readonly route: string;
  readonly service: string;
  readonly method: string | undefined;
}

/** The matches of an inbound policy route, refusing the shapes whose reach cannot be read off statically. */
function inboundMatches(route: KubeObject): RouteMatch[] {
  const found: RouteMatch[] = [];
  for (const rule of route.spec?.rules ?? []) {
    // A rule without matches matches every request, reflection included.
    if (!Array.isArray(rule.matches) || rule.matches.length === 0)
      throw new Error(`GRPCRoute ${route.metadata.name}: a policy route must match named services or methods; a rule without matches admits everything`);
    for (const match of rule.matches) {
      const { type = "Exact", service, method } = match.method ?? {};
      if (type !== "Exact") throw new Error(`GRPCRoute ${route.metadata.name}: only Exact method matches can be checked (found ${type})`);
      if (typeof service !== "string") throw new Error(`GRPCRoute ${route.metadata.name}: every match must name a gRPC service (method.service)`);
      if (match.headers !== undefined) throw new Error(`GRPCRoute ${route.metadata.name}: header matches are chosen by the caller and cannot scope an authorization`);
      found.push({ route: route.metadata.name, service, method });
    }
  }
  return found;
}

/**
 * What the rendered Linkerd policy lets each app service call, method by
 * method, as Linkerd decides it: a call to a Server's port is matched to one
 * of the GRPCRoutes attached to that Server (Gateway API precedence: a match
 * naming the method beats one naming only the service; a tie between two
 * routes is refused here, as its winner depends on creation time), and only
 * the callers the AuthorizationPolicies on that route name may make it. A
 * call no route matches is refused. The result is "caller->callee
 * pkg.Service/Method" keys, sorted. The callee is the Server's pods (label
 * app); the callers are the ServiceAccounts in each MeshTLSAuthentication
 * (each service runs as a ServiceAccount named after it). Servers of other
 * protocols (the edge, metrics) and the data stores are not calls between
 * services and are read elsewhere.
 */
export function methodGrantsFromLinkerd(objects: readonly KubeObject[]): string[] {
  const find = (kind: string, name: string) => {
    const found = objects.find((object) => object.kind === kind && object.metadata.name === name);
    if (!found) throw new Error(`${kind} ${name} is referenced but not defined`);
    return found;
  };
  const policies = objects.filter((object) => object.kind === "AuthorizationPolicy");
  const callersOfTarget = (kind: string, name: string): AppService[] => {
    const callers: AppService[] = [];
    for (const policy of policies.filter((candidate) => candidate.spec?.targetRef?.kind === kind && candidate.spec?.targetRef?.name === name)) {
      for (const ref of policy.spec?.requiredAuthenticationRefs ?? []) {
        if (ref.kind === "NetworkAuthentication") continue; // unauthenticated sources (probes): checked by the security tests
        const identities = ref.kind === "ServiceAccount" ? [ref] : ref.kind === "MeshTLSAuthentication" ? (find("MeshTLSAuthentication", ref.name).spec?.identityRefs ?? []) : [];
        if (ref.kind === "MeshTLSAuthentication" && find("MeshTLSAuthentication", ref.name).spec?.identities)
          throw new Error(`MeshTLSAuthentication ${ref.name} uses raw identities: name ServiceAccounts in identityRefs`);
        for (const identity of identities) {
          if (identity.kind !== "ServiceAccount" || !isAppService(identity.name) || (identity.namespace !== undefined && identity.namespace !== "meshwork")) {
            throw new Error(`AuthorizationPolicy ${policy.metadata.name} admits ${identity.kind} ${identity.name}: expected an app service's ServiceAccount`);
          }
          callers.push(identity.name);
        }
      }
    }
    return callers;
  };
  const grants = new Set<string>();
  for (const server of objects.filter((object) => object.kind === "Server" && object.spec?.proxyProtocol === "gRPC")) {
    const app = server.spec?.podSelector?.matchLabels?.app;
    if (typeof app === "string" && DATA_WORKLOADS.includes(app)) continue;
    if (typeof app !== "string" || !isAppService(app)) throw new Error(`Server ${server.metadata.name} selects no app service (podSelector.matchLabels.app)`);
    const serverName = server.metadata.name;
    // Authorizing the Server itself would admit every route on it: policies here are per route.
    const direct = policies.filter((policy) => policy.spec?.targetRef?.kind === "Server" && policy.spec.targetRef.name === serverName);
    if (direct.length > 0) throw new Error(`AuthorizationPolicy ${direct[0]!.metadata.name} targets the gRPC Server ${serverName}: authorize its GRPCRoutes instead`);
    const routes = objects.filter(
      (object) => object.kind === "GRPCRoute" && (object.spec?.parentRefs ?? []).some((ref: { kind?: string; name?: string }) => ref.kind === "Server" && ref.name === serverName),
    );
    const matches = routes.flatMap(inboundMatches);
    const universe = [...new Set(matches.flatMap((match) => methodsOfService(match.service)))];
    for (const method of universe) {
      const [service, name] = method.split("/");
      const applicable = matches.filter((match) => match.service === service && (match.method === undefined || match.method === name));
      const best = Math.max(...applicable.map((match) => (match.method === undefined ? 1 : 2)));
      const winners = [...new Set(applicable.filter((match) => (match.method === undefined ? 1 : 2) === best).map((match) => match.route))];
      if (winners.length > 1) throw new Error(`GRPCRoutes ${winners.join(" and ")} on Server ${serverName} both match ${method} as closely: which one applies depends on creation time`);
      for (const caller of callersOfTarget("GRPCRoute", winners[0]!)) grants.add(`${caller}->${app} ${method}`);
    }
  }
  return [...grants].sort();
}

/** What deploy/call-graph.ts grants, in the form of methodGrantsFromLinkerd: each edge's methods and grpc.health.v1.Health. */
export const declaredMethodGrants = (graph: readonly Pick<CallEdge, "caller" | "callee" | "methods">[]): string[] =>
  methodKeys(
    graph.map((edge) => ({ ...edge, methods: [...edge.methods, HEALTH_SERVICE] })),
    expandMethods,
  );

/**
 * Edges the Linkerd policy authorizes, at service level: a caller granted
 * any method beyond grpc.health.v1.Health has an "api" edge, one granted
 * health only a "health" edge (see methodGrantsFromLinkerd).
 */
export function edgesFromLinkerd(objects: readonly KubeObject[]): FoundEdge[] {
  const methods = new Map<string, string[]>();
  for (const key of methodGrantsFromLinkerd(objects)) {
    const [pair, method] = key.split(" ") as [string, string];
    if (!methods.has(pair)) methods.set(pair, []);
    if (!method.startsWith(`${HEALTH_SERVICE}/`)) methods.get(pair)!.push(method);
  }
  return [...methods].map(([pair, granted]) => {
    const [caller, callee] = pair.split("->") as [AppService, AppService];
    return { caller, callee, scope: granted.length > 0 ? "api" : "health", methods: granted };
  });
}
