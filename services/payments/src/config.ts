import { ConfigError, loadConfig, serviceSettings, settings, type ConfigOf } from "@meshwork/platform";

/** Every setting of the payments service, with its environment variable and default. */
export const paymentsConfigSpec = {
  ...serviceSettings("PAYMENTS", { port: 50054, metricsPort: 9468, dataDir: ".data/pglite" }),
  processorTimeoutMs: {
    env: "PAYMENTS_PROCESSOR_TIMEOUT_MS",
    doc: "Longest wait for the card processor; after it the call answers UNAVAILABLE and may be retried.",
    schema: settings.positiveInt(),
    default: 5_000,
  },
  pendingLeaseMs: {
    env: "PAYMENTS_PENDING_LEASE_MS",
    doc: "How long a claimed authorization keeps other callers out; after it (a crash) the same request may ask the processor again. Must exceed PAYMENTS_PROCESSOR_TIMEOUT_MS.",
    schema: settings.positiveInt(),
    default: 30_000,
  },
  liveConfigFile: {
    env: "PAYMENTS_LIVE_CONFIG_FILE",
    doc: "JSON file of live settings, re-read when it changes (without Consul); MESHWORK_LIVE_* variables otherwise.",
    schema: settings.text(),
    default: "",
  },
};

export type PaymentsConfig = ConfigOf<typeof paymentsConfigSpec>;

export function loadPaymentsConfig(env: Readonly<Record<string, string | undefined>>): PaymentsConfig {
  const config = loadConfig(paymentsConfigSpec, env);
  // A lease shorter than the processor timeout would let a second caller
  // take over a claim whose holder is still waiting for its answer.
  if (config.pendingLeaseMs <= config.processorTimeoutMs) {
    throw new ConfigError([`PAYMENTS_PENDING_LEASE_MS (pendingLeaseMs): must exceed PAYMENTS_PROCESSOR_TIMEOUT_MS (${config.processorTimeoutMs}); got ${config.pendingLeaseMs}`]);
  }
  return config;
}
