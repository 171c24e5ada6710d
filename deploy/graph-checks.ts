/**
 * Reads the call graph back out of the three places that must agree with
 * deploy/call-graph.ts: the services' source, compose.yaml and the rendered
 * Linkerd policy. Each reader returns edges; the tests compare them with the
 * declaration. Written by hand: no library knows this project's conventions.
 */
import { APP_SERVICES, isAppService, type AppService, type CallScope } from "./call-graph.js";

export interface FoundEdge {
  readonly caller: AppService;
  readonly callee: AppService;
  readonly scope: CallScope;
}

export interface SourceFile {
  readonly path: string;
  readonly text: string;
}

const CONTRACT_IMPORT = /import\s*(?:type\s*)?\{([^}]*)\}\s*from\s*["']@meshwork\/contracts\/shop\/([a-z-]+)\/v\d+\/[^"']+["']/g;
// Any function whose name says "client" called with a contract service first:
// createClient(CatalogService, ...), the gateway's clientOf(IdentityService, ...).
const CLIENT_CALL = /\b(\w*[cC]lient\w*)\s*\(\s*([A-Za-z_$][\w$]*)\s*[,)]/g;
const WATCH_CALL = /\.watch\(\s*["'`]([a-z-]+)["'`]/g;
const ADDRESS_SETTING = /["'`]([A-Z]+)_([A-Z]+)_ADDR["'`]/g;

/**
 * The services `caller`'s source calls, from three kinds of evidence: a
 * client built for another service's contract (scope "api"), a discovery
 * watch on a service name, and a `<CALLER>_<CALLEE>_ADDR` address setting
 * (either of which alone means a connection used for health only).
 */
export function edgesFromSource(caller: AppService, files: readonly SourceFile[]): FoundEdge[] {
  const api = new Set<AppService>();
  const reached = new Set<AppService>();
  const unknown: string[] = [];
  const note = (name: string, where: string, target: Set<AppService>) => {
    if (name === caller) return;
    if (!isAppService(name)) unknown.push(`${where}: "${name}" is not one of ${APP_SERVICES.join(", ")}`);
    else target.add(name);
  };
  for (const file of files) {
    const contractOf = new Map<string, string>();
    for (const [, names, owner] of file.text.matchAll(CONTRACT_IMPORT)) {
      for (const part of names!.split(",")) {
        const local = part
          .trim()
          .replace(/^type\s+/, "")
          .split(/\s+as\s+/)
          .pop()
          ?.trim();
        if (local) contractOf.set(local, owner!);
      }
    }
    for (const [, , argument] of file.text.matchAll(CLIENT_CALL)) {
      const owner = contractOf.get(argument!);
      if (owner !== undefined) note(owner, `${file.path}: client of ${argument}`, api);
    }
    for (const [, name] of file.text.matchAll(WATCH_CALL)) note(name!, `${file.path}: discovery watch`, reached);
    for (const [, owner, name] of file.text.matchAll(ADDRESS_SETTING)) {
      if (owner!.toLowerCase() === caller) note(name!.toLowerCase(), `${file.path}: ${owner}_${name}_ADDR`, reached);
    }
  }
  if (unknown.length > 0) throw new Error(`${caller}'s source names services the graph does not know:\n${unknown.join("\n")}`);
  const edges: FoundEdge[] = [...api].map((callee) => ({ caller, callee, scope: "api" }));
  for (const callee of reached) if (!api.has(callee)) edges.push({ caller, callee, scope: "health" });
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

const HEALTH_SERVICE = "grpc.health.v1.Health";
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

/**
 * Edges the Linkerd policy authorizes: AuthorizationPolicy -> its target (a
 * Server, or a GRPCRoute on a Server) -> the Server's pods (label app) is the
 * callee; the MeshTLSAuthentication's ServiceAccounts are the callers (each
 * service runs as a ServiceAccount named after it). A route that matches only
 * grpc.health.v1.Health gives "health" edges, anything else "api".
 */
export function edgesFromLinkerd(objects: readonly KubeObject[]): FoundEdge[] {
  const find = (kind: string, name: string) => {
    const found = objects.find((object) => object.kind === kind && object.metadata.name === name);
    if (!found) throw new Error(`${kind} ${name} is referenced but not defined`);
    return found;
  };
  const serverCallee = (server: KubeObject): AppService | undefined => {
    const app = server.spec?.podSelector?.matchLabels?.app;
    if (typeof app === "string" && DATA_WORKLOADS.includes(app)) return undefined;
    if (typeof app !== "string" || !isAppService(app)) throw new Error(`Server ${server.metadata.name} selects no app service (podSelector.matchLabels.app)`);
    return app;
  };
  const api = new Set<string>();
  const health = new Set<string>();
  for (const policy of objects.filter((object) => object.kind === "AuthorizationPolicy")) {
    const target = policy.spec?.targetRef ?? {};
    let callee: AppService | undefined;
    let scope: CallScope = "api";
    if (target.kind === "Server") {
      callee = serverCallee(find("Server", target.name));
    } else if (target.kind === "GRPCRoute") {
      const route = find("GRPCRoute", target.name);
      const parents = (route.spec?.parentRefs ?? []).filter((ref: { kind?: string }) => ref.kind === "Server");
      if (parents.length !== 1) throw new Error(`GRPCRoute ${route.metadata.name} must attach to exactly one Server`);
      callee = serverCallee(find("Server", parents[0].name));
      const services = routeServices(route);
      scope = services.length > 0 && services.every((service) => service === HEALTH_SERVICE) ? "health" : "api";
    } else {
      throw new Error(`AuthorizationPolicy ${policy.metadata.name} targets ${target.kind}: expected a Server or a GRPCRoute`);
    }
    if (callee === undefined) continue; // a data store: see dataClientsFromLinkerd
    for (const ref of policy.spec?.requiredAuthenticationRefs ?? []) {
      if (ref.kind !== "MeshTLSAuthentication") continue;
      const authentication = find("MeshTLSAuthentication", ref.name);
      if (authentication.spec?.identities) throw new Error(`MeshTLSAuthentication ${ref.name} uses raw identities: name ServiceAccounts in identityRefs`);
      for (const identity of authentication.spec?.identityRefs ?? []) {
        if (identity.kind !== "ServiceAccount" || !isAppService(identity.name)) {
          throw new Error(`MeshTLSAuthentication ${ref.name} names ${identity.kind} ${identity.name}: expected an app service's ServiceAccount`);
        }
        (scope === "api" ? api : health).add(`${identity.name}->${callee}`);
      }
    }
  }
  const edges: FoundEdge[] = [];
  for (const pair of api) {
    const [caller, callee] = pair.split("->") as [AppService, AppService];
    edges.push({ caller, callee, scope: "api" });
  }
  for (const pair of health) {
    if (api.has(pair)) continue;
    const [caller, callee] = pair.split("->") as [AppService, AppService];
    edges.push({ caller, callee, scope: "health" });
  }
  return edges;
}
