/**
 * Live configuration, as a port: values a running service re-reads without a
 * restart (rates, latencies, limits). Every update is validated with the same
 * schema as the start-up value; an invalid update is refused and the previous
 * value kept. Adapters: environment / file (env.ts) and Consul KV (consul-kv.ts).
 */
import type { z } from "zod";

export interface LiveValue<T> {
  /** The current, always valid, value. */
  get(): T;
  /** Called after every accepted change; returns an unsubscribe function. */
  onChange(listener: (value: T, previous: T) => void): () => void;
}

export interface LiveConfigSource {
  /**
   * Binds `key` (e.g. "payments/decline-rate") to `schema`. `fallback` is the
   * value used until the source has a valid one (and whenever the key is absent).
   */
  value<S extends z.ZodType>(key: string, schema: S, fallback: z.output<S>): LiveValue<z.output<S>>;
  /** Resolves once the first read of every bound key finished. */
  ready(): Promise<void>;
  close(): void;
}
