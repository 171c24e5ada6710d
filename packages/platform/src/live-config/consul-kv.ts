/**
 * Live config from Consul KV: each bound key follows `prefix + key` with
 * blocking queries, so an operator's `consul kv put` reaches every instance
 * within one round trip, and an invalid put is refused by every instance.
 * With Consul's ACLs on, a key the service's token may not read is a 403:
 * logged as an error naming the key and the missing permission (once, until
 * it heals), while the value stays at its fallback.
 */
import type { z } from "zod";
import type { Logger } from "../logger.js";
import { createConsulClient, describeAclRefusal, describeConsulError, startBlockingWatch, type BlockingWatch, type ConsulConnection } from "../discovery/consul-client.js";
import { ABSENT, createLiveBinding, type LiveBinding, type RawValue } from "./live-binding.js";
import type { LiveConfigSource, LiveValue } from "./ports.js";

export type { ConsulConnection } from "../discovery/consul-client.js";

export interface ConsulLiveConfigOptions {
  readonly consul: ConsulConnection;
  /** Prepended to every key. Default "meshwork/". */
  readonly prefix?: string;
  readonly log: Logger;
  /** Longest time Consul holds one blocking query. Default "30s". */
  readonly watchWait?: string;
  /** Upper bound of the retry backoff after failed queries, in ms. Default 30000. */
  readonly retryMaxMs?: number;
}

interface KeyWatch {
  readonly bindings: LiveBinding<unknown>[];
  /** What Consul last said, handed to bindings made after it answered. */
  last: RawValue | undefined;
  /** Settles on the first answer or the first failure, whichever comes first. */
  readonly firstRead: Promise<void>;
  readonly settle: () => void;
  readonly blocking: BlockingWatch;
}

/** kv.get's answer: undefined for a missing key, else the item with Value decoded to text. */
function toRaw(data: unknown): RawValue {
  if (typeof data !== "object" || data === null) return ABSENT;
  const value = (data as { Value?: unknown }).Value;
  // Consul sends null for a key whose value is empty.
  if (value === null || value === undefined) return { kind: "text", text: "" };
  return typeof value === "string" ? { kind: "text", text: value } : ABSENT;
}

export function createConsulLiveConfig(options: ConsulLiveConfigOptions): LiveConfigSource {
  const { log } = options;
  const prefix = options.prefix ?? "meshwork/";
  const watchWait = options.watchWait ?? "30s";
  const retryMaxMs = options.retryMaxMs ?? 30_000;
  const client = createConsulClient(options.consul);
  const watches = new Map<string, KeyWatch>();
  let closed = false;

  function startKeyWatch(consulKey: string): KeyWatch {
    let settle!: () => void;
    const firstRead = new Promise<void>((resolve) => {
      settle = resolve;
    });
    // Logged once per refusal, not once per retry of the watch.
    let refusal: string | undefined;
    const keyWatch: KeyWatch = {
      bindings: [],
      last: undefined,
      firstRead,
      settle,
      blocking: startBlockingWatch({
        client,
        method: client.kv.get,
        options: { key: consulKey },
        wait: watchWait,
        retryMaxMs,
        log,
        logContext: { key: consulKey },
        onData: (data) => {
          if (refusal !== undefined) log.info({ key: consulKey }, "consul answers this service's token for the key again");
          refusal = undefined;
          const raw = toRaw(data);
          keyWatch.last = raw;
          for (const binding of keyWatch.bindings) binding.offer(raw);
          settle();
        },
        onError: (error) => {
          const why = describeAclRefusal(error, options.consul);
          if (why !== undefined) {
            if (why !== refusal)
              log.error({ key: consulKey }, `cannot read live setting ${consulKey}: ${why}; its policy needs read on a key_prefix covering it (its own prefix); keeping the current value`);
            refusal = why;
          } else {
            log.warn({ key: consulKey, error: describeConsulError(error) }, "consul kv query failed; keeping the current value");
          }
          // Start-up goes on with the fallback rather than waiting for Consul.
          settle();
        },
      }),
    };
    return keyWatch;
  }

  return {
    value<S extends z.ZodType>(key: string, schema: S, fallback: z.output<S>): LiveValue<z.output<S>> {
      if (closed) throw new Error(`live config source is closed; cannot bind "${key}"`);
      const consulKey = prefix + key;
      const binding = createLiveBinding({ key, schema, fallback, log, source: `consul kv ${consulKey}` });
      let keyWatch = watches.get(consulKey);
      if (keyWatch === undefined) {
        keyWatch = startKeyWatch(consulKey);
        watches.set(consulKey, keyWatch);
      }
      keyWatch.bindings.push(binding as LiveBinding<unknown>);
      if (keyWatch.last !== undefined) binding.offer(keyWatch.last);
      return binding.live;
    },
    async ready() {
      await Promise.all([...watches.values()].map((keyWatch) => keyWatch.firstRead));
    },
    close() {
      if (closed) return;
      closed = true;
      for (const keyWatch of watches.values()) {
        keyWatch.blocking.stop();
        // Nobody waiting on ready() should hang on a source that is gone.
        keyWatch.settle();
      }
      watches.clear();
      client.destroy();
    },
  };
}
