/**
 * Live config from the environment, optionally overridden by a JSON file that
 * is re-read whenever it changes. The environment of a running process does
 * not change, so the file is what makes values "live" without Consul (mount a
 * ConfigMap, edit a file in compose).
 */
import { watch as watchFs, readFileSync, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import type { z } from "zod";
import type { Logger } from "../logger.js";
import { ABSENT, createLiveBinding, type LiveBinding, type RawValue } from "./live-binding.js";
import type { LiveConfigSource, LiveValue } from "./ports.js";

export interface EnvLiveConfigOptions {
  /** Where MESHWORK_LIVE_* variables are read; process.env when omitted. */
  readonly env?: NodeJS.ProcessEnv;
  /**
   * A JSON object file, e.g. { "payments/decline-rate": 0.1 }. Its values
   * override the environment's. It may be absent at start and appear later.
   */
  readonly file?: string;
  readonly log: Logger;
  /** Quiet time after the last file event before re-reading. Default 50 ms. */
  readonly debounceMs?: number;
}

/** "payments/decline-rate" -> "MESHWORK_LIVE_PAYMENTS_DECLINE_RATE". */
export function liveConfigEnvName(key: string): string {
  return `MESHWORK_LIVE_${key.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
}

type FileValues = ReadonlyMap<string, unknown>;

type FileRead = { readonly ok: true; readonly values: FileValues } | { readonly ok: false; readonly reason: string };

function parseFile(text: string): FileRead {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text) as unknown;
  } catch (error) {
    return { ok: false, reason: `not JSON: ${error instanceof Error ? error.message : String(error)}` };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return { ok: false, reason: "not a JSON object" };
  }
  return { ok: true, values: new Map(Object.entries(parsed)) };
}

function isMissingFile(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === "ENOENT";
}

export function createEnvLiveConfig(options: EnvLiveConfigOptions): LiveConfigSource {
  const { log } = options;
  const env = options.env ?? process.env;
  const file = options.file === undefined ? undefined : resolve(options.file);
  const debounceMs = options.debounceMs ?? 50;

  const bindings: LiveBinding<unknown>[] = [];
  let fileValues: FileValues = new Map();
  let closed = false;
  let watcher: FSWatcher | undefined;
  let debounce: NodeJS.Timeout | undefined;
  let reloading: Promise<void> = Promise.resolve();

  function rawFor(key: string): RawValue {
    if (fileValues.has(key)) return { kind: "value", value: fileValues.get(key) };
    const text = env[liveConfigEnvName(key)];
    return text === undefined ? ABSENT : { kind: "text", text };
  }

  function applyRead(read: FileRead): void {
    if (!read.ok) {
      log.warn({ file, reason: read.reason }, "live config file refused; keeping the previous values");
      return;
    }
    fileValues = read.values;
    for (const binding of bindings) binding.offer(rawFor(binding.key));
  }

  async function reload(): Promise<void> {
    if (file === undefined || closed) return;
    let read: FileRead;
    try {
      read = parseFile(await readFile(file, "utf8"));
    } catch (error) {
      if (!isMissingFile(error)) {
        log.warn({ file, err: error }, "live config file unreadable; keeping the previous values");
        return;
      }
      // A removed file removes its overrides.
      read = { ok: true, values: new Map() };
    }
    if (!closed) applyRead(read);
  }

  if (file !== undefined) {
    // Read synchronously once so the first value() already sees the file:
    // this runs in the composition root, before any request is served.
    try {
      applyRead(parseFile(readFileSync(file, "utf8")));
    } catch (error) {
      if (!isMissingFile(error)) throw error;
      log.warn({ file }, "live config file absent; using the environment until it appears");
    }
    try {
      // The directory, not the file: editors and ConfigMap updates replace
      // the file by renaming, which a watch on the old inode never sees.
      watcher = watchFs(dirname(file), (_event, name) => {
        if (name !== null && name.toString() !== basename(file)) return;
        if (debounce !== undefined) clearTimeout(debounce);
        debounce = setTimeout(() => {
          debounce = undefined;
          // Serialised, so an older read can never land after a newer one.
          reloading = reloading.then(reload).catch((error: unknown) => {
            log.error({ file, err: error }, "live config file reload failed");
          });
        }, debounceMs);
      });
      watcher.on("error", (error) => {
        log.warn({ file, err: error }, "live config file watch failed; values stay as they are");
      });
    } catch (error) {
      log.warn({ file, err: error }, "cannot watch the live config file; changes need a restart");
    }
  }

  return {
    value<S extends z.ZodType>(key: string, schema: S, fallback: z.output<S>): LiveValue<z.output<S>> {
      const binding = createLiveBinding({
        key,
        schema,
        fallback,
        log,
        source: file === undefined ? liveConfigEnvName(key) : `${file} or ${liveConfigEnvName(key)}`,
      });
      binding.offer(rawFor(key));
      bindings.push(binding as LiveBinding<unknown>);
      return binding.live;
    },
    ready() {
      // Every read happens inside value(); there is nothing left to wait for.
      return Promise.resolve();
    },
    close() {
      closed = true;
      if (debounce !== undefined) clearTimeout(debounce);
      debounce = undefined;
      watcher?.close();
      watcher = undefined;
    },
  };
}
