import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { createKeyedRateLimiter, type BucketLimits } from "./token-bucket.js";

function clock(start = 1_000_000) {
  let now = start;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe("keyed token bucket", () => {
  test("a new key may spend its whole burst at once, then is refused with the wait until the next token", () => {
    const time = clock();
    const limiter = createKeyedRateLimiter({ limits: () => ({ ratePerSec: 10, burst: 3 }), maxKeys: 10, now: time.now });
    assert.deepEqual(
      [1, 2, 3].map(() => limiter.take("ada").allowed),
      [true, true, true],
    );
    assert.deepEqual(limiter.take("ada"), { allowed: false, retryAfterMs: 100 });
  });

  test("tokens come back at the configured rate, never beyond the burst", () => {
    const time = clock();
    const limiter = createKeyedRateLimiter({ limits: () => ({ ratePerSec: 10, burst: 2 }), maxKeys: 10, now: time.now });
    limiter.take("ada");
    limiter.take("ada");
    time.advance(50);
    assert.deepEqual(limiter.take("ada"), { allowed: false, retryAfterMs: 50 });
    time.advance(50);
    assert.equal(limiter.take("ada").allowed, true);
    time.advance(60_000);
    assert.deepEqual(
      [1, 2, 3].map(() => limiter.take("ada").allowed),
      [true, true, false],
    );
  });

  test("keys do not share a bucket", () => {
    const limiter = createKeyedRateLimiter({ limits: () => ({ ratePerSec: 1, burst: 1 }), maxKeys: 10, now: clock().now });
    assert.equal(limiter.take("ada").allowed, true);
    assert.equal(limiter.take("ada").allowed, false);
    assert.equal(limiter.take("bob").allowed, true);
  });

  test("a live change of the limits applies to the next request, a lowered burst at once", () => {
    const time = clock();
    let limits: BucketLimits = { ratePerSec: 1, burst: 100 };
    const limiter = createKeyedRateLimiter({ limits: () => limits, maxKeys: 10, now: time.now });
    assert.equal(limiter.take("ada").allowed, true);
    limits = { ratePerSec: 1, burst: 2 };
    assert.deepEqual(
      [1, 2, 3].map(() => limiter.take("ada").allowed),
      [true, true, false],
    );
    limits = { ratePerSec: 1000, burst: 2 };
    time.advance(1);
    assert.equal(limiter.take("ada").allowed, true);
  });

  test("memory stays bounded: past maxKeys the least recently seen key is forgotten", () => {
    const limiter = createKeyedRateLimiter({ limits: () => ({ ratePerSec: 1, burst: 1 }), maxKeys: 2, now: clock().now });
    limiter.take("a");
    limiter.take("b");
    limiter.take("a");
    limiter.take("c");
    assert.equal(limiter.size(), 2);
    assert.equal(limiter.take("a").allowed, false, "a was seen recently and is still limited");
    assert.equal(limiter.take("b").allowed, true, "b was forgotten: a full bucket again");
  });

  test("a clock that goes backwards adds no tokens", () => {
    const time = clock();
    const limiter = createKeyedRateLimiter({ limits: () => ({ ratePerSec: 1, burst: 1 }), maxKeys: 10, now: time.now });
    limiter.take("ada");
    time.advance(-5000);
    assert.equal(limiter.take("ada").allowed, false);
  });
});
