import { PaymentService } from "@meshwork/contracts/shop/payments/v1/payments";
import { createLiveConfigFor, runMain, startService, type RunningService, type StartOptions } from "@meshwork/platform";
import { migrations } from "../migrations/index.js";
import { createSimulatedProcessor } from "./adapters/payment-processor.simulated.js";
import { createKnexPaymentStore } from "./adapters/payment-store.knex.js";
import { loadPaymentsConfig } from "./config.js";
import { bindProcessorSettings } from "./live-settings.js";
import { createPaymentService } from "./service.js";

/**
 * The payments service's composition root: configuration, then adapters,
 * then the server, then shutdown. `env` is the environment to read
 * (process.env when run on its own; the all-in-one launcher passes its own); `options` may hand
 * in a logger or telemetry instead of building them from the config.
 */
export async function startPayments(env: Readonly<Record<string, string | undefined>>, options: StartOptions = {}): Promise<RunningService> {
  const config = loadPaymentsConfig(env);
  return startService({
    name: "payments",
    config,
    migrations,
    log: options.log,
    telemetry: options.telemetry,
    async setup({ database, host, log, shutdown }) {
      const live = createLiveConfigFor(config, env, log);
      shutdown.add("close live config", async () => live.close());
      const settings = bindProcessorSettings(live);
      await live.ready();
      const processor = createSimulatedProcessor({
        latencyMs: () => settings.latencyMs.get(),
        transientFailureRate: () => settings.transientFailureRate.get(),
      });
      const payments = createPaymentService({
        store: createKnexPaymentStore(database.knex),
        processor,
        processorTimeoutMs: config.processorTimeoutMs,
        pendingLeaseMs: config.pendingLeaseMs,
      });
      // Runs after the gRPC calls drained and before the database closes, so
      // an answer the processor already gave is recorded, not lost.
      shutdown.add("finish authorizations in flight", () => payments.settle());
      host.add(PaymentService, payments.handlers);
      log.info({ processorLatencyMs: settings.latencyMs.get(), transientFailureRate: settings.transientFailureRate.get() }, "simulated processor ready");
    },
  });
}

if (import.meta.filename === process.argv[1]) runMain("payments", () => startPayments(process.env));
