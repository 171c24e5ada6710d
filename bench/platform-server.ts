import { CatalogService, StockService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { createGrpcHost, createLogger, createTelemetry, type Telemetry } from "@meshwork/platform";
import { createMemoryCatalogStore } from "../services/catalog/src/adapters/catalog-store.memory.js";
import { demoCatalog } from "../services/catalog/src/demo-catalog.js";
import { createCatalogHandlers, createStockHandlers } from "../services/catalog/src/service.js";
import type { RunningServer } from "./running-server.js";

/**
 * A fixed clock for the seed, so `update_time` (and with it the size of the
 * encoded response, whose nanos are a varint) is the same on every run.
 */
const SEED_TIME = new Date("2025-01-01T12:00:00.123Z");

/**
 * Server A: the catalog as `services/catalog/src/main.ts` wires it (platform
 * host, real handlers, both services, health and reflection), with the memory
 * store instead of a database, so a call is a genuine in-memory read through
 * everything the platform adds per call.
 */
export async function startPlatformCatalog(options: { observed?: ObservedSettings } = {}): Promise<RunningServer> {
  const store = createMemoryCatalogStore(() => SEED_TIME);
  await store.seed(demoCatalog);
  // The level a deployed service runs at: nothing is written per call, but
  // the logger is the real one (child loggers, redaction), not a no-op.
  const log = createLogger({ service: "catalog", level: "warn" });
  const telemetry = options.observed ? observedTelemetry(options.observed) : undefined;
  const host = createGrpcHost({ name: "catalog", log, ...(telemetry ? { telemetry } : {}) });
  const handlers = createCatalogHandlers({ store });
  let served = 0;
  host.add(CatalogService, {
    ...handlers,
    // Counted here so the child can report CPU per call from its own numbers;
    // one increment is noise next to a call.
    getProduct: (request, context) => {
      served++;
      return handlers.getProduct(request, context);
    },
  });
  host.add(StockService, createStockHandlers({ store }));
  const port = await host.listen({ host: "127.0.0.1", port: 0 });
  host.setServing(true);
  return {
    port,
    served: () => served,
    stop: async () => {
      await host.shutdown(1000);
      await telemetry?.shutdown();
    },
  };
}

/** The observed catalog's telemetry: where its spans go, and the share of the traces it starts that it records (all when unset). */
export interface ObservedSettings {
  readonly otlpEndpoint: string;
  readonly sampleRatio?: number;
}

/**
 * Tracing on with every call sampled (or, given `sampleRatio`, that share of
 * the traces it starts: parentbased_traceidratio), through the real
 * BatchSpanProcessor and OTLP/HTTP exporter, to a sink in another process
 * (otlp-sink.ts): what turning spans into OTLP and sending them costs is the
 * service's, as it is deployed; what receiving them costs is not. And the
 * metrics registry the service would serve.
 */
function observedTelemetry(settings: ObservedSettings): Telemetry {
  return createTelemetry({
    service: "catalog",
    tracesExporter: "otlp",
    otlpEndpoint: settings.otlpEndpoint,
    ...(settings.sampleRatio === undefined ? {} : { sampler: "parentbased_traceidratio", samplerRatio: settings.sampleRatio }),
  });
}
