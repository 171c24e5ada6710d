/**
 * The part every live-config adapter shares: one key bound to one schema,
 * fed raw values by its source, keeping only valid ones. Adapters differ in
 * where raw values come from, never in what is accepted.
 */
import { isDeepStrictEqual } from "node:util";
import { z } from "zod";
import type { Logger } from "../logger.js";
import type { LiveValue } from "./ports.js";

/** What a source knows about a key at one moment. */
export type RawValue =
  /** The key is not set: the binding goes back to its fallback. */
  | { readonly kind: "absent" }
  /** Text (an env var, a KV value): JSON when it parses as JSON, else the string itself. */
  | { readonly kind: "text"; readonly text: string }
  /** An already structured value (a property of a JSON file). */
  | { readonly kind: "value"; readonly value: unknown };

export const ABSENT: RawValue = Object.freeze({ kind: "absent" });

export interface LiveBinding<T> {
  readonly key: string;
  readonly live: LiveValue<T>;
  /** Offers what the source now holds; refused (and logged) when invalid. */
  offer(raw: RawValue): void;
}

export function decodeText(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

export function createLiveBinding<S extends z.ZodType>(options: {
  readonly key: string;
  readonly schema: S;
  readonly fallback: z.output<S>;
  readonly log: Logger;
  /** Names the source in logs, e.g. "consul kv meshwork/payments/decline-rate". */
  readonly source: string;
}): LiveBinding<z.output<S>> {
  type T = z.output<S>;
  const { key, schema, fallback, log, source } = options;
  let current: T = fallback;
  const listeners = new Set<(value: T, previous: T) => void>();

  function accept(next: T): void {
    if (isDeepStrictEqual(next, current)) return;
    const previous = current;
    current = next;
    log.info({ key, source }, "live config value changed");
    for (const listener of [...listeners]) {
      try {
        listener(next, previous);
      } catch (error) {
        log.error({ key, err: error }, "live config listener failed");
      }
    }
  }

  return {
    key,
    live: {
      get: () => current,
      onChange(listener) {
        const wrapped = (value: T, previous: T): void => listener(value, previous);
        listeners.add(wrapped);
        return () => {
          listeners.delete(wrapped);
        };
      },
    },
    offer(raw) {
      if (raw.kind === "absent") {
        accept(fallback);
        return;
      }
      const candidate = raw.kind === "text" ? decodeText(raw.text) : raw.value;
      const parsed = schema.safeParse(candidate);
      if (!parsed.success) {
        // The value itself stays out of the log: live config may hold things
        // nobody wants copied into log storage.
        log.warn({ key, source, error: z.prettifyError(parsed.error) }, "refused invalid live config value; keeping the previous one");
        return;
      }
      accept(parsed.data as T);
    },
  };
}
