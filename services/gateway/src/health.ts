/**
 * grpc.health.v1 for the gateway itself, over Connect (there is no Connect
 * package for it, and grpc-health-check only plugs into grpc-js servers).
 */
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { HealthCheckResponse_ServingStatus, type Health } from "@meshwork/contracts/health/v1/health";
import { sleep } from "./abortable.js";

/** The gateway's own health: SERVING until shutdown starts. Answers for "" and for every service it routes. */
export function createHealthHandlers(options: {
  readonly services: readonly string[];
  readonly serving: () => boolean;
  readonly changed: AbortSignal;
  /** Serve Watch (GATEWAY_HEALTH_WATCH not off): each watcher holds a stream open for as long as it likes. */
  readonly watch: boolean;
}): ServiceImpl<typeof Health> {
  const known = new Set(["", ...options.services]);
  const current = (): HealthCheckResponse_ServingStatus => (options.serving() ? HealthCheckResponse_ServingStatus.SERVING : HealthCheckResponse_ServingStatus.NOT_SERVING);
  return {
    check(request) {
      if (!known.has(request.service)) throw new ConnectError(`unknown service ${request.service}`, Code.NotFound);
      return { status: current() };
    },
    async *watch(request, ctx) {
      if (!options.watch) throw new ConnectError("grpc.health.v1.Health/Watch is turned off at this gateway: use Check", Code.Unimplemented);
      // The gRPC health protocol: an unknown service is watched as SERVICE_UNKNOWN, not refused.
      if (!known.has(request.service)) {
        yield { status: HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN };
        await sleep(Number.POSITIVE_INFINITY, AbortSignal.any([ctx.signal, options.changed]));
        return;
      }
      yield { status: current() };
      // The only change there will ever be is to NOT_SERVING at shutdown.
      await sleep(Number.POSITIVE_INFINITY, AbortSignal.any([ctx.signal, options.changed]));
      if (!ctx.signal.aborted) yield { status: current() };
    },
    list() {
      return { statuses: Object.fromEntries([...known].map((name) => [name, { status: current() }])) };
    },
  };
}
