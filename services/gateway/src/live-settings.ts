/**
 * The gateway settings that change without a restart: the rate limits, so an
 * operator can tighten them during an incident (Consul KV when
 * CONSUL_HTTP_ADDR is set, else MESHWORK_LIVE_* variables or the JSON file).
 */
import { settings, type LiveConfigSource, type LiveValue } from "@meshwork/platform";
import type { BucketLimits } from "./token-bucket.js";

export const LIVE_KEYS = {
  /** Steady requests per second one signed-in user may make. Default 20. */
  perUserRps: "gateway/rate-limit-per-user-rps",
  /** Requests a user may make at once after a quiet spell (the bucket size). Default 40. */
  perUserBurst: "gateway/rate-limit-per-user-burst",
  /** Steady requests per second from one client address (IPv6: one /64), signed in or not. Default 100. */
  perAddressRps: "gateway/rate-limit-per-address-rps",
  /** Bucket size per address. Default 200. */
  perAddressBurst: "gateway/rate-limit-per-address-burst",
} as const;

export const LIVE_DEFAULTS = { perUserRps: 20, perUserBurst: 40, perAddressRps: 100, perAddressBurst: 200 } as const;

export interface RateLimitSettings {
  readonly perUser: () => BucketLimits;
  readonly perAddress: () => BucketLimits;
}

export function bindRateLimitSettings(source: LiveConfigSource): RateLimitSettings {
  // Whole numbers above 0: a rate of 0 would refuse everything, which is an
  // outage, not a limit; turning limits off is done by setting them high.
  const value = (key: string, fallback: number): LiveValue<number> => source.value(key, settings.positiveInt(), fallback);
  const perUserRps = value(LIVE_KEYS.perUserRps, LIVE_DEFAULTS.perUserRps);
  const perUserBurst = value(LIVE_KEYS.perUserBurst, LIVE_DEFAULTS.perUserBurst);
  const perAddressRps = value(LIVE_KEYS.perAddressRps, LIVE_DEFAULTS.perAddressRps);
  const perAddressBurst = value(LIVE_KEYS.perAddressBurst, LIVE_DEFAULTS.perAddressBurst);
  return {
    perUser: () => ({ ratePerSec: perUserRps.get(), burst: perUserBurst.get() }),
    perAddress: () => ({ ratePerSec: perAddressRps.get(), burst: perAddressBurst.get() }),
  };
}
