/**
 * The payments settings that change without a restart, so resilience work
 * can turn the simulated processor's latency and failures up and down on a
 * running mesh (Consul KV, or a JSON file / MESHWORK_LIVE_* without Consul).
 */
import { z } from "zod";
import type { LiveConfigSource, LiveValue } from "@meshwork/platform";

export const LIVE_KEYS = {
  /** Milliseconds the simulated processor takes to answer (whole number, 0 to 60000). Default 0. */
  processorLatencyMs: "payments/processor-latency-ms",
  /** Share of processor calls that fail transiently (UNAVAILABLE), 0 to 1. Default 0. */
  transientFailureRate: "payments/transient-failure-rate",
} as const;

// Strict numbers (no coercion): `true` or "" must be refused, not read as 1 or 0.
const latencySchema = z.number().int("expected whole milliseconds").min(0, "expected 0 or more").max(60_000, "expected at most 60000");
const rateSchema = z.number().min(0, "expected a rate from 0 to 1").max(1, "expected a rate from 0 to 1");

export interface ProcessorLiveSettings {
  readonly latencyMs: LiveValue<number>;
  readonly transientFailureRate: LiveValue<number>;
}

export function bindProcessorSettings(source: LiveConfigSource): ProcessorLiveSettings {
  return {
    latencyMs: source.value(LIVE_KEYS.processorLatencyMs, latencySchema, 0),
    transientFailureRate: source.value(LIVE_KEYS.transientFailureRate, rateSchema, 0),
  };
}
