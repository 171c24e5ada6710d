/**
 * How a client treats one downstream: retries, retry budget, circuit breaker,
 * bulkhead and instance ejection. One JSON object per downstream, validated
 * with the same schema whether it comes from code defaults or live config
 * (`<caller>/resilience/<downstream>`, e.g. "orders/resilience/payments").
 */
import { z } from "zod";
import { Code } from "../rpc-errors.js";
import type { LiveConfigSource, LiveValue } from "../live-config/ports.js";

const whole = (min: number, max: number) => z.number().int("expected a whole number").min(min, `expected ${min} or more`).max(max, `expected at most ${max}`);
const ratio = () => z.number().gt(0, "expected a ratio between 0 and 1").lt(1, "expected a ratio between 0 and 1");

const RETRYABLE_CODE_NAMES = ["UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "INTERNAL", "UNKNOWN"] as const;

export const resilienceSchema = z
  .object({
    retry: z
      .object({
        /** Attempts of one call, the first included; 1 turns retries off. */
        maxAttempts: whole(1, 10),
        /** Cap of the first back-off; each later one doubles, full jitter (a random wait from 0 to the cap). */
        initialBackoffMs: whole(1, 60_000),
        maxBackoffMs: whole(1, 600_000),
        /** Status codes worth another attempt, by name. */
        codes: z.array(z.enum(RETRYABLE_CODE_NAMES)).min(1, "expected at least one code"),
      })
      .strict(),
    /**
     * The retry budget, as gRPC's retry throttling: a bucket of `maxTokens`;
     * a failed attempt takes one token, a success gives back `tokenRatio`;
     * retries happen only while more than half the tokens are left. In an
     * outage retries stop after about maxTokens/2 failures, so they cannot
     * multiply the load on a service that is already down.
     */
    budget: z.object({ maxTokens: whole(1, 1000), tokenRatio: z.number().gt(0, "expected a ratio above 0").max(1, "expected at most 1") }).strict(),
    breaker: z
      .object({
        /**
         * false: no breaker at all, every call is tried. For a caller whose
         * own loop already backs off and must reach the downstream the moment
         * it is back (a persistent client that resends with an idempotency key).
         */
        enabled: z.boolean(),
        /** Opens after this many failures in a row... */
        consecutiveFailures: whole(1, 1000),
        /** ...or when this share of the last `window` calls failed (with at least `minimumCalls` seen). */
        failureRatio: ratio(),
        window: whole(2, 10_000),
        minimumCalls: whole(1, 10_000),
        /** Open for this long, then one trial call (half-open) decides. */
        halfOpenAfterMs: whole(10, 600_000),
      })
      .strict(),
    bulkhead: z.object({ maxConcurrent: whole(1, 100_000), maxQueue: whole(0, 100_000) }).strict(),
    ejection: z
      .object({
        /** Failures in a row (unavailable or timed out) that eject one instance... */
        consecutiveFailures: whole(1, 1000),
        /** ...for this long, doubling each time it is ejected again, up to the maximum. */
        baseEjectionMs: whole(10, 600_000),
        maxEjectionMs: whole(10, 3_600_000),
      })
      .strict(),
  })
  .strict()
  .refine((value) => value.retry.initialBackoffMs <= value.retry.maxBackoffMs, { message: "retry.initialBackoffMs: must not exceed retry.maxBackoffMs", path: ["retry", "initialBackoffMs"] })
  .refine((value) => value.breaker.minimumCalls <= value.breaker.window, { message: "breaker.minimumCalls: must not exceed breaker.window", path: ["breaker", "minimumCalls"] })
  .refine((value) => value.ejection.baseEjectionMs <= value.ejection.maxEjectionMs, {
    message: "ejection.baseEjectionMs: must not exceed ejection.maxEjectionMs",
    path: ["ejection", "baseEjectionMs"],
  });

export type ResilienceSettings = z.output<typeof resilienceSchema>;

export const DEFAULT_RESILIENCE: ResilienceSettings = Object.freeze({
  retry: { maxAttempts: 3, initialBackoffMs: 25, maxBackoffMs: 500, codes: ["UNAVAILABLE"] },
  budget: { maxTokens: 10, tokenRatio: 0.1 },
  breaker: { enabled: true, consecutiveFailures: 5, failureRatio: 0.5, window: 20, minimumCalls: 10, halfOpenAfterMs: 2000 },
  bulkhead: { maxConcurrent: 64, maxQueue: 64 },
  ejection: { consecutiveFailures: 3, baseEjectionMs: 1000, maxEjectionMs: 30_000 },
}) as ResilienceSettings;

/** Partial overrides merged over `base`, section by section. */
export function mergeResilience(base: ResilienceSettings, overrides: ResilienceOverrides | undefined): ResilienceSettings {
  if (!overrides) return base;
  return {
    retry: { ...base.retry, ...overrides.retry },
    budget: { ...base.budget, ...overrides.budget },
    breaker: { ...base.breaker, ...overrides.breaker },
    bulkhead: { ...base.bulkhead, ...overrides.bulkhead },
    ejection: { ...base.ejection, ...overrides.ejection },
  };
}

export type ResilienceOverrides = { readonly [K in keyof ResilienceSettings]?: Partial<ResilienceSettings[K]> };

export function retryableCodes(settings: ResilienceSettings): ReadonlySet<Code> {
  return new Set(settings.retry.codes.map((name) => Code[name]));
}

/** The live key of `caller`'s settings towards `downstream`. */
export function resilienceKey(caller: string, downstream: string): string {
  return `${caller}/resilience/${downstream}`;
}

/**
 * Binds `caller`'s settings towards `downstream` to live config. A live value
 * is a partial object merged over `defaults` and validated whole: an update
 * that makes the whole invalid (say, minimumCalls above window) is refused.
 */
export function bindResilienceSettings(source: LiveConfigSource, caller: string, downstream: string, defaults: ResilienceSettings = DEFAULT_RESILIENCE): LiveValue<ResilienceSettings> {
  const partial = z
    .object({
      retry: z.object({}).passthrough().optional(),
      budget: z.object({}).passthrough().optional(),
      breaker: z.object({}).passthrough().optional(),
      bulkhead: z.object({}).passthrough().optional(),
      ejection: z.object({}).passthrough().optional(),
    })
    .strict()
    .transform((value) => mergeResilience(defaults, value as ResilienceOverrides))
    .pipe(resilienceSchema);
  return source.value(resilienceKey(caller, downstream), partial, defaults);
}
