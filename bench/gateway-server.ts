import { createTelemetry, type Telemetry } from "@meshwork/platform";
import { startGateway } from "../services/gateway/src/main.js";
import type { RunningServer } from "./running-server.js";

/**
 * Rate limits far above what two cores can send: the bench measures the
 * edge's cost per call, not its refusals (limits are live settings,
 * MESHWORK_LIVE_* when there is no Consul; see services/gateway/src/live-settings.ts).
 */
const UNLIMITED = String(1_000_000_000);

/**
 * The gateway as services/gateway/src/main.ts starts it, in front of one
 * catalog, with the settings it deploys with except: a free port (and
 * metrics port), no Consul, no web app (a bench is no browser), the log at
 * warn (no line per call at any level above debug either way), the rate
 * limits raised, and the catalog cache as asked (0: off; otherwise so long
 * that every measured call is a hit). `grpcPassthrough` false sends gRPC
 * calls through Connect too (GATEWAY_GRPC_PASSTHROUGH).
 */
export async function startBenchGateway(upstream: string, catalogCacheMs: number, grpcPassthrough = true): Promise<RunningServer> {
  let served = 0;
  // Counted where the edge records every answered call (RED metrics), on
  // either path: the telemetry the gateway would make itself (tracing off,
  // as deployed by default), with one increment added to its server-call recorder.
  const own = createTelemetry({ service: "gateway", tracesExporter: "none" });
  const telemetry: Telemetry = {
    ...own,
    metrics: {
      ...own.metrics,
      serverCall: (service, method, code, seconds) => {
        served++;
        own.metrics.serverCall(service, method, code, seconds);
      },
    },
  };
  const service = await startGateway(
    {
      GATEWAY_HOST: "127.0.0.1",
      GATEWAY_PORT: "0",
      GATEWAY_LOG_LEVEL: "warn",
      GATEWAY_CATALOG_ADDR: upstream,
      GATEWAY_CATALOG_CACHE_MS: String(catalogCacheMs),
      GATEWAY_GRPC_PASSTHROUGH: String(grpcPassthrough),
      GATEWAY_WEB_DIR: "",
      CONSUL_HTTP_ADDR: "",
      MESHWORK_LIVE_GATEWAY_RATE_LIMIT_PER_ADDRESS_RPS: UNLIMITED,
      MESHWORK_LIVE_GATEWAY_RATE_LIMIT_PER_ADDRESS_BURST: UNLIMITED,
      MESHWORK_LIVE_GATEWAY_RATE_LIMIT_PER_USER_RPS: UNLIMITED,
      MESHWORK_LIVE_GATEWAY_RATE_LIMIT_PER_USER_BURST: UNLIMITED,
    },
    { telemetry },
  );
  return {
    port: service.port,
    served: () => served,
    stop: async () => {
      await service.shutdown.run("bench done");
    },
  };
}
