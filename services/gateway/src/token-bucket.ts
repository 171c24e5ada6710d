/**
 * Token buckets, one per key (a user id, a client address), in memory.
 *
 * Written here rather than taken from npm on purpose: the registry's
 * well-kept limiters do not fit this spot. rate-limiter-flexible's memory
 * limiter counts fixed windows (a client may send two windows' worth across a
 * boundary) and expires keys with timers; `limiter` is one bucket built to
 * throttle outgoing calls (it waits for tokens), with no notion of many keys,
 * so the map, its bound and its eviction would be ours anyway. The algorithm itself is ten
 * lines, and the limits must be re-read on every call because they are live
 * settings. (This package also takes no dependency beyond Connect.)
 */

export interface BucketLimits {
  /** Tokens added per second: the steady rate allowed. */
  readonly ratePerSec: number;
  /** Bucket size: how many requests may come at once after a quiet spell. */
  readonly burst: number;
}

export type RateDecision = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterMs: number };

export interface KeyedRateLimiter {
  /** Takes one token from `key`'s bucket, or says how long until one is there. */
  take(key: string): RateDecision;
  /** Keys tracked right now. */
  size(): number;
}

export interface KeyedRateLimiterOptions {
  /** Read on every take, so a live change applies to the next request. */
  readonly limits: () => BucketLimits;
  /**
   * Most keys remembered. Past it the least recently seen key is forgotten,
   * which gives it a full bucket again: that bounds memory under a flood of
   * made-up addresses at the price of leniency towards the oldest keys.
   */
  readonly maxKeys: number;
  readonly now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export function createKeyedRateLimiter(options: KeyedRateLimiterOptions): KeyedRateLimiter {
  const now = options.now ?? Date.now;
  // A Map iterates in insertion order; re-inserting on every use makes its
  // first key the least recently used one, which is what eviction wants.
  const buckets = new Map<string, Bucket>();

  return {
    take(key) {
      const { ratePerSec, burst } = options.limits();
      const at = now();
      let bucket = buckets.get(key);
      if (bucket === undefined) {
        bucket = { tokens: burst, at };
      } else {
        buckets.delete(key);
        const refilled = bucket.tokens + (Math.max(0, at - bucket.at) * ratePerSec) / 1000;
        // min() also applies a lowered burst at once, not after the surplus is spent.
        bucket.tokens = Math.min(burst, refilled);
        bucket.at = at;
      }
      buckets.set(key, bucket);
      if (buckets.size > options.maxKeys) {
        const oldest = buckets.keys().next();
        if (!oldest.done) buckets.delete(oldest.value);
      }
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return { allowed: true };
      }
      return { allowed: false, retryAfterMs: Math.max(1, Math.ceil(((1 - bucket.tokens) * 1000) / ratePerSec)) };
    },
    size: () => buckets.size,
  };
}
