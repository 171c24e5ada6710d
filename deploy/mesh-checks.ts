/**
 * Static checks of how Linkerd will treat the rendered manifests where a
 * wrong setting fails silently in a cluster (a retry that never applies, or
 * one that re-sends a write; an address range wider than meant). Pure
 * functions of the rendered objects: nothing here can run a cluster.
 */
import { expandMethods, isUnary } from "./grpc-methods.js";
import type { KubeObject } from "./graph-checks.js";

const annotationsOf = (object: KubeObject): Record<string, string> => (object.metadata as { annotations?: Record<string, string> }).annotations ?? {};

/** Linkerd's retry and timeout annotations (retry.linkerd.io/*, timeout.linkerd.io/*). */
const isTrafficAnnotation = (key: string) => key.startsWith("retry.linkerd.io/") || key.startsWith("timeout.linkerd.io/");

/** The gRPC status codes a retry.linkerd.io/grpc value lists, normalised to lower-case with dashes. */
export const retriedCodes = (value: string | undefined): string[] =>
  value === undefined
    ? []
    : value
        .split(",")
        .map((code) => code.trim().toLowerCase().replace(/_/g, "-"))
        .filter((code) => code.length > 0);

export interface BackendRoutes {
  /** The Service (its name) and port the outbound routes attach to. */
  readonly service: string;
  readonly port: number;
  /** Every gRPC service the backend serves (full names). */
  readonly served: readonly string[];
  /** The unary methods that change nothing ("pkg.Service/Method"). */
  readonly reads: readonly string[];
}

/**
 * Which outbound route (parent: the Service) handles each method of the
 * backend, by Gateway API precedence: a match naming the method, then one
 * naming the service, then a rule without matches (every call). Methods no
 * route matches are absent; two routes equally specific for one method are
 * reported by name.
 */
export function outboundRouteOf(objects: readonly KubeObject[], backend: BackendRoutes): { routes: KubeObject[]; routeOf: Map<string, KubeObject>; ambiguous: string[] } {
  const routes = objects.filter(
    (object) =>
      object.kind === "GRPCRoute" &&
      (object.spec?.parentRefs ?? []).some(
        (ref: { kind?: string; name?: string; port?: number }) => ref.kind === "Service" && ref.name === backend.service && (ref.port === undefined || ref.port === backend.port),
      ),
  );
  const routeOf = new Map<string, KubeObject>();
  const ambiguous: string[] = [];
  for (const method of expandMethods(backend.served)) {
    const [service, name] = method.split("/");
    let best = 0;
    let winners: KubeObject[] = [];
    for (const route of routes) {
      for (const rule of route.spec?.rules ?? []) {
        const matches: { method?: { service?: string; method?: string } }[] = rule.matches ?? [];
        const score =
          matches.length === 0 ? 1 : Math.max(0, ...matches.map((match) => (match.method?.service !== service ? 0 : match.method?.method === undefined ? 2 : match.method?.method === name ? 3 : 0)));
        if (score > best) [best, winners] = [score, [route]];
        else if (score === best && score > 0 && !winners.includes(route)) winners.push(route);
      }
    }
    if (winners.length > 1) ambiguous.push(`${method}: ${winners.map((route) => route.metadata.name).join(", ")}`);
    if (winners.length > 0) routeOf.set(method, winners[0]!);
  }
  return { routes, routeOf, ambiguous };
}

/**
 * What is wrong with the retries and timeouts the callers' proxies will
 * apply to one backend, as sentences (empty when nothing is):
 * - settings on the Service: for gRPC they apply only through a route, and
 *   a route's own retry settings replace them, so they mislead;
 * - no catch-all route carrying retry settings: calls outside every route
 *   get none;
 * - a route handling a method that is not a read re-sends it after it may
 *   have reached its handler (retry.linkerd.io/timeout, or retrying any code
 *   but UNAVAILABLE), or a request timeout on a stream (it would cut it);
 * - more than one proxy retry (the services' clients retry too).
 */
export function retryProblems(objects: readonly KubeObject[], backend: BackendRoutes): string[] {
  const problems: string[] = [];
  const service = objects.find((object) => object.kind === "Service" && object.metadata.name === backend.service);
  if (!service) return [`Service ${backend.service} is not rendered`];
  for (const key of Object.keys(annotationsOf(service)).filter(isTrafficAnnotation)) {
    problems.push(`Service ${backend.service} carries ${key}: put it on a GRPCRoute (on a Service it is ignored for gRPC, or overridden)`);
  }
  const { routes, routeOf, ambiguous } = outboundRouteOf(objects, backend);
  for (const entry of ambiguous) problems.push(`two routes handle ${entry} equally: which applies depends on creation time`);
  const catchAll = routes.filter((route) => (route.spec?.rules ?? []).some((rule: { matches?: unknown[] }) => (rule.matches ?? []).length === 0));
  if (catchAll.length !== 1) problems.push(`${backend.service} has ${catchAll.length} catch-all routes (a rule without matches); expected one carrying the retry settings`);
  else if (annotationsOf(catchAll[0]!)["retry.linkerd.io/grpc"] === undefined) problems.push(`${backend.service}'s catch-all route ${catchAll[0]!.metadata.name} sets no retry.linkerd.io/grpc`);
  for (const method of expandMethods(backend.served)) {
    const route = routeOf.get(method);
    if (!route) {
      problems.push(`${method} is matched by no route of ${backend.service}`);
      continue;
    }
    const annotations = annotationsOf(route);
    const name = route.metadata.name;
    const limit = annotations["retry.linkerd.io/limit"];
    if (limit !== undefined && Number(limit) > 1) problems.push(`GRPCRoute ${name} retries ${limit} times: the clients retry too, keep the proxy at one`);
    if (!backend.reads.includes(method)) {
      if (annotations["retry.linkerd.io/timeout"] !== undefined) problems.push(`GRPCRoute ${name} cancels and re-sends ${method}, which is not a read, after retry.linkerd.io/timeout`);
      const unsafe = retriedCodes(annotations["retry.linkerd.io/grpc"]).filter((code) => code !== "unavailable");
      if (unsafe.length > 0) problems.push(`GRPCRoute ${name} retries ${method}, which is not a read, on ${unsafe.join(", ")}`);
    }
    if (!isUnary(method)) {
      for (const key of ["timeout.linkerd.io/request", "timeout.linkerd.io/response"]) {
        if (annotations[key] !== undefined) problems.push(`GRPCRoute ${name} sets ${key} on the stream ${method}: it would cut the stream`);
      }
    }
  }
  return problems;
}

/** An IPv4 or IPv6 CIDR as [first address, prefix length, bits]. */
function parseCidr(cidr: string): { base: bigint; prefix: number; bits: number } {
  const [address, length] = cidr.split("/");
  if (address === undefined || length === undefined) throw new Error(`${cidr} is not a CIDR`);
  let value = 0n;
  let bits: number;
  if (address.includes(":")) {
    bits = 128;
    const [head, tail] = address.split("::");
    const headParts = head ? head.split(":") : [];
    const tailParts = tail ? tail.split(":") : [];
    const groups = address.includes("::") ? [...headParts, ...Array(8 - headParts.length - tailParts.length).fill("0"), ...tailParts] : headParts;
    if (groups.length !== 8) throw new Error(`${cidr} is not an IPv6 CIDR`);
    for (const group of groups) value = (value << 16n) + BigInt(Number.parseInt(group, 16));
  } else {
    bits = 32;
    const octets = address.split(".").map(Number);
    if (octets.length !== 4 || octets.some((octet) => !(octet >= 0 && octet <= 255))) throw new Error(`${cidr} is not an IPv4 CIDR`);
    for (const octet of octets) value = (value << 8n) + BigInt(octet);
  }
  const prefix = Number(length);
  const mask = ((1n << BigInt(prefix)) - 1n) << BigInt(bits - prefix);
  return { base: value & mask, prefix, bits };
}

/** True when two CIDRs of the same family share an address. */
export function cidrsOverlap(a: string, b: string): boolean {
  const [left, right] = [parseCidr(a), parseCidr(b)];
  if (left.bits !== right.bits) return false;
  const prefix = Math.min(left.prefix, right.prefix);
  const shift = BigInt(left.bits - prefix);
  return left.base >> shift === right.base >> shift;
}

export const isIpv6Cidr = (cidr: string) => parseCidr(cidr).bits === 128;
