/**
 * What the edge sees of the mesh: every known service, its instances from
 * discovery, and each instance's own answer to grpc.health.v1 Check.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus } from "@meshwork/contracts/health/v1/health";
import { ServingStatus, type MeshService, type MeshServiceStatusSchema } from "@meshwork/contracts/shop/gateway/v1/mesh";
import { createClient, INVALID_FIELD_TRAILER, instanceAddress, type ClosableClient, type DownstreamView, type InstanceWatch, type Resolver } from "@meshwork/platform";
import { sleep } from "./abortable.js";

export type ServiceStatus = MessageInitShape<typeof MeshServiceStatusSchema>;

export interface MeshStatus {
  /** Every service by name, its instances by id, each health-checked now (or within minIntervalMs). */
  snapshot(): Promise<ServiceStatus[]>;
  close(): void;
}

export interface MeshStatusOptions {
  readonly services: readonly string[];
  readonly resolver: Resolver;
  /** Health of one instance; never throws (UNREACHABLE instead). */
  readonly check: (address: string) => Promise<ServingStatus>;
  /** The gateway's client of a service, when it calls it: its breaker and per-instance latency. */
  readonly downstream?: (service: string) => DownstreamView | undefined;
  /**
   * A snapshot this young (or one still being taken) is shared, so a room
   * full of dashboards watching costs one round of health checks, not one each.
   */
  readonly minIntervalMs?: number;
  readonly now?: () => number;
}

export function createMeshStatus(options: MeshStatusOptions): MeshStatus {
  const now = options.now ?? Date.now;
  const minIntervalMs = options.minIntervalMs ?? 250;
  const watches = new Map<string, InstanceWatch>([...options.services].sort().map((name) => [name, options.resolver.watch(name)]));
  let latest: { at: number; result: Promise<ServiceStatus[]> } | undefined;

  const take = async (): Promise<ServiceStatus[]> =>
    Promise.all(
      [...watches].map(async ([name, watch]) => {
        const instances = [...watch.instances()].sort((a, b) => a.id.localeCompare(b.id));
        return {
          name,
          instances: await Promise.all(
            instances.map(async (instance) => {
              const address = instanceAddress(instance);
              const view = options.downstream?.(name);
              const stats = view?.instance(address);
              return {
                id: instance.id,
                address,
                status: await options.check(address),
                breakerState: view?.breakerState() ?? "",
                latencyP50Ms: stats?.latencyP50Ms ?? 0,
                latencyP99Ms: stats?.latencyP99Ms ?? 0,
              };
            }),
          ),
        };
      }),
    );

  return {
    snapshot() {
      if (latest === undefined || now() - latest.at >= minIntervalMs) {
        const at = now();
        const result = take();
        latest = { at, result };
        // Measured from when it finished, so a slow round is not immediately followed by another.
        void result.then(() => {
          if (latest?.result === result) latest = { at: now(), result };
        });
      }
      return latest.result;
    },
    close() {
      for (const watch of watches.values()) watch.close();
    },
  };
}

export interface HealthChecker {
  check(address: string): Promise<ServingStatus>;
  close(): void;
}

/** grpc.health.v1 Check of the whole server (service ""), one channel per instance address. */
export function createHealthChecker(options: { readonly timeoutMs: number }): HealthChecker {
  const clients = new Map<string, ClosableClient<typeof Health>>();
  return {
    async check(address) {
      let health = clients.get(address);
      if (!health) {
        health = createClient(Health, { target: address, defaultTimeoutMs: options.timeoutMs });
        clients.set(address, health);
      }
      try {
        const { status } = await health.client.check({ service: "" }, { timeoutMs: options.timeoutMs, parent: null });
        if (status === HealthCheckResponse_ServingStatus.SERVING) return ServingStatus.SERVING;
        if (status === HealthCheckResponse_ServingStatus.NOT_SERVING) return ServingStatus.NOT_SERVING;
        return ServingStatus.UNSPECIFIED;
      } catch {
        return ServingStatus.UNREACHABLE;
      }
    },
    close() {
      for (const health of clients.values()) health.close();
      clients.clear();
    },
  };
}

const DEFAULT_WATCH_INTERVAL_MS = 2000;

/** MeshService: the status now, or now and then every interval until the client hangs up (or the gateway stops). */
export function createMeshHandlers(status: MeshStatus, streamsClosing: AbortSignal): ServiceImpl<typeof MeshService> {
  return {
    async getMeshStatus() {
      return { services: await status.snapshot(), observeTime: timestampNow() };
    },
    async *watchMeshStatus(request, ctx) {
      const interval = request.intervalMs === 0 ? DEFAULT_WATCH_INTERVAL_MS : request.intervalMs;
      if (interval < 500 || interval > 60_000) {
        throw new ConnectError("interval_ms: must be 0 or from 500 to 60000", Code.InvalidArgument, { [INVALID_FIELD_TRAILER]: "interval_ms" });
      }
      const stop = AbortSignal.any([ctx.signal, streamsClosing]);
      while (!stop.aborted) {
        yield { services: await status.snapshot(), observeTime: timestampNow() };
        await sleep(interval, stop);
      }
      if (streamsClosing.aborted && !ctx.signal.aborted) throw new ConnectError("the gateway is shutting down: call again", Code.Unavailable);
    },
  };
}
