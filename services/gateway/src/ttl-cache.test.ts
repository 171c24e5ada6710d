import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { createTtlCache } from "./ttl-cache.js";

function clock() {
  let now = 0;
  return {
    now: () => now,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe("ttl cache", () => {
  test("an entry is served until its time is up, then loaded again", async () => {
    const time = clock();
    const cache = createTtlCache<string>({ ttlMs: 2000, maxEntries: 10, now: time.now });
    let loads = 0;
    const load = async () => `v${++loads}`;
    assert.equal(await cache.getOrLoad("k", load), "v1");
    time.advance(1999);
    assert.equal(await cache.getOrLoad("k", load), "v1");
    time.advance(1);
    assert.equal(await cache.getOrLoad("k", load), "v2");
  });

  test("concurrent misses of one key share one load", async () => {
    const cache = createTtlCache<string>({ ttlMs: 1000, maxEntries: 10, now: clock().now });
    let loads = 0;
    let release!: (value: string) => void;
    const load = () => {
      loads++;
      return new Promise<string>((resolve) => (release = resolve));
    };
    const waiting = Promise.all([cache.getOrLoad("k", load), cache.getOrLoad("k", load), cache.getOrLoad("k", load)]);
    release("v");
    assert.deepEqual(await waiting, ["v", "v", "v"]);
    assert.equal(loads, 1);
  });

  test("a failed load is not kept: every waiter gets the error, the next call loads again", async () => {
    const cache = createTtlCache<string>({ ttlMs: 1000, maxEntries: 10, now: clock().now });
    const failing = async (): Promise<string> => {
      throw new Error("backend down");
    };
    const results = await Promise.allSettled([cache.getOrLoad("k", failing), cache.getOrLoad("k", failing)]);
    assert.deepEqual(
      results.map((result) => result.status),
      ["rejected", "rejected"],
    );
    assert.equal(cache.size(), 0);
    assert.equal(await cache.getOrLoad("k", async () => "v"), "v");
  });

  test("size is bounded: the least recently used entry goes first", async () => {
    const cache = createTtlCache<string>({ ttlMs: 1000, maxEntries: 2, now: clock().now });
    cache.set("a", "A");
    cache.set("b", "B");
    assert.equal(cache.get("a"), "A");
    cache.set("c", "C");
    assert.equal(cache.size(), 2);
    assert.equal(cache.get("b"), undefined);
    assert.equal(cache.get("a"), "A");
    assert.equal(cache.get("c"), "C");
  });

  test("an expired entry is no longer fresh but stays available as stale until the stale window ends", async () => {
    const time = clock();
    const cache = createTtlCache<string>({ ttlMs: 1000, staleMs: 5000, maxEntries: 10, now: time.now });
    cache.set("k", "old");
    time.advance(1500);
    assert.equal(cache.get("k"), undefined, "not fresh");
    assert.equal(cache.getStale("k"), "old", "still there for a fallback");
    time.advance(5000);
    assert.equal(cache.getStale("k"), undefined, "gone after the stale window");
  });

  test("without a stale window an expired entry is gone for the fallback too", async () => {
    const time = clock();
    const cache = createTtlCache<string>({ ttlMs: 1000, maxEntries: 10, now: time.now });
    cache.set("k", "old");
    time.advance(1001);
    assert.equal(cache.getStale("k"), undefined);
  });
});
