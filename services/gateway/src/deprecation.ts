/**
 * Calls of a deprecated API version (shop.orders.v1 since API 1.1.0) answer
 * RFC 9745's `Deprecation` and RFC 8594's `Sunset`, on every protocol: they
 * are HTTP response headers for Connect and gRPC-web, and gRPC reads the
 * same headers as response metadata. Each such call is counted
 * (meshwork_api_deprecated_calls_total{grpc_service,grpc_method}), so an
 * operator sees when the version's clients have gone.
 *
 * It wraps the request gate rather than sitting among the interceptors,
 * which Connect runs only after the gate: a v1 call refused for its token or
 * its rate is still a v1 call, and its client should still learn that v1 ends.
 */
import { deprecationHeaders, type ApiLifecycle, type ServiceMetrics } from "@meshwork/platform";
import type { RequestGate } from "./edge-context.js";

export interface DeprecationOptions {
  readonly metrics: Pick<ServiceMetrics, "deprecatedCall">;
  /** The released dates (@meshwork/contracts/api-lifecycle) when omitted. */
  readonly lifecycle?: ApiLifecycle;
}

export function createDeprecationGate(options: DeprecationOptions): (inner: RequestGate) => RequestGate {
  // Per service, once: the dates are those of the release this build carries.
  const known = new Map<string, Readonly<Record<string, string>> | undefined>();
  const headersOf = (service: string): Readonly<Record<string, string>> | undefined => {
    if (!known.has(service)) known.set(service, deprecationHeaders(service, options.lifecycle));
    return known.get(service);
  };
  // Not async itself: the inner gate's promise is returned as it is, one promise less per call.
  return (inner) => (ctx) => {
    const service = ctx.method.parent.typeName;
    const headers = headersOf(service);
    if (headers) {
      for (const [name, value] of Object.entries(headers)) ctx.responseHeader.set(name, value);
      options.metrics.deprecatedCall(service, ctx.method.name);
    }
    return inner(ctx);
  };
}
