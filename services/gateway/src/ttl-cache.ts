/**
 * A small time-bounded, size-bounded cache with one shared load per key.
 *
 * `lru-cache` (ttl + max + fetchMethod) would fit; it is left out to keep the
 * edge's dependencies to Connect, and the part used here is this small. Swap
 * it in if the cache ever needs more (stale-while-revalidate, size by bytes).
 */

export interface TtlCacheOptions {
  /** How long an entry is served after it was stored. */
  readonly ttlMs: number;
  /** Most entries kept; the least recently used goes first. */
  readonly maxEntries: number;
  /** How long past `ttlMs` an entry is kept for `getStale` (serving while the source is down). Default 0. */
  readonly staleMs?: number;
  readonly now?: () => number;
}

export interface TtlCache<V> {
  /** The fresh value under `key`, or undefined. */
  get(key: string): V | undefined;
  set(key: string, value: V): void;
  /**
   * The fresh value, else the result of `load`, stored. Concurrent misses of
   * one key share one load (no stampede on a cold or just-expired entry). A
   * failed load is not stored: every waiter gets its error, the next call loads again.
   */
  getOrLoad(key: string, load: () => Promise<V>): Promise<V>;
  /** The value under `key` even if no longer fresh, within the stale window; for when a load failed. */
  getStale(key: string): V | undefined;
  size(): number;
}

interface Entry<V> {
  readonly value: V;
  readonly expiresAt: number;
  readonly staleUntil: number;
}

export function createTtlCache<V>(options: TtlCacheOptions): TtlCache<V> {
  const now = options.now ?? Date.now;
  const entries = new Map<string, Entry<V>>();
  const loading = new Map<string, Promise<V>>();

  const get = (key: string): V | undefined => {
    const entry = entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now()) {
      if (entry.staleUntil <= now()) entries.delete(key);
      return undefined;
    }
    entries.delete(key);
    // Re-inserted: Map order is recency order, so the first key is the eviction candidate.
    entries.set(key, entry);
    return entry.value;
  };

  const set = (key: string, value: V): void => {
    entries.delete(key);
    const expiresAt = now() + options.ttlMs;
    entries.set(key, { value, expiresAt, staleUntil: expiresAt + (options.staleMs ?? 0) });
    while (entries.size > options.maxEntries) {
      const oldest = entries.keys().next();
      if (oldest.done) break;
      entries.delete(oldest.value);
    }
  };

  return {
    get,
    set,
    getOrLoad(key, load) {
      const cached = get(key);
      if (cached !== undefined) return Promise.resolve(cached);
      const pending = loading.get(key);
      if (pending) return pending;
      const started = (async () => {
        try {
          const value = await load();
          set(key, value);
          return value;
        } finally {
          loading.delete(key);
        }
      })();
      loading.set(key, started);
      return started;
    },
    getStale(key) {
      const entry = entries.get(key);
      return entry !== undefined && entry.staleUntil > now() ? entry.value : undefined;
    },
    size: () => entries.size,
  };
}
