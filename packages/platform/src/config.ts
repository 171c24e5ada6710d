import { readFileSync } from "node:fs";
import type { z } from "zod";
import { settings } from "./config-schemas.js";
import { DEFAULT_MAX_CONNECTION_AGE_MS } from "./server.js";
import { telemetrySettings } from "./telemetry/index.js";

/** One configuration key: where it comes from, what it means, what it must be. */
export interface Setting<S extends z.ZodType = z.ZodType> {
  /** Environment variable that sets it, e.g. "CATALOG_PORT". */
  readonly env: string;
  /** One line saying what it is for. */
  readonly doc: string;
  /** Validates and converts the raw text (or the default). */
  readonly schema: S;
  /** Used when the environment does not set it; omitted means required. */
  readonly default?: z.input<S>;
  /**
   * Never print its value (passwords, URLs with credentials). A secret may
   * also be given as `<env>_FILE`, the path of a file holding it (compose
   * secrets, Kubernetes Secret volumes), so it never sits in the environment.
   */
  readonly secret?: boolean;
}

export type ConfigSpec = Record<string, Setting>;

export type ConfigOf<Spec extends ConfigSpec> = { readonly [K in keyof Spec]: z.output<Spec[K]["schema"]> };

/** Start-up configuration that is not valid; its message names every bad key. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join("\n  ")}`);
  }
}

/**
 * Reads the spec from the environment over the defaults, validates every key
 * and returns a typed, frozen object; throws ConfigError naming each key that
 * is missing or invalid, with what was expected.
 */
export function loadConfig<Spec extends ConfigSpec>(spec: Spec, env: Readonly<Record<string, string | undefined>> = process.env): ConfigOf<Spec> {
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  for (const [key, setting] of Object.entries(spec)) {
    let raw = env[setting.env];
    const file = setting.secret ? env[`${setting.env}_FILE`] : undefined;
    if (file !== undefined && file !== "") {
      if (raw !== undefined && raw !== "") {
        problems.push(`${setting.env} (${key}): set both ${setting.env} and ${setting.env}_FILE; set one`);
        continue;
      }
      try {
        // One trailing newline is what `echo` and most secret tools write.
        raw = readFileSync(file, "utf8").replace(/\r?\n$/, "");
      } catch (error) {
        problems.push(`${setting.env}_FILE (${key}): cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
        continue;
      }
    }
    const fromEnv = raw !== undefined && raw !== "";
    if (!fromEnv && !("default" in setting)) {
      problems.push(`${setting.env} (${key}): required: ${setting.doc}`);
      continue;
    }
    const result = setting.schema.safeParse(fromEnv ? raw : setting.default);
    if (result.success) {
      values[key] = result.data;
    } else {
      const shown = setting.secret ? "(hidden)" : JSON.stringify(fromEnv ? raw : setting.default);
      const expected = result.error.issues.map((issue) => issue.message).join("; ");
      problems.push(`${setting.env} (${key}): ${expected}; got ${shown}${fromEnv ? "" : " (the default)"}`);
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return Object.freeze(values) as ConfigOf<Spec>;
}

/** A Markdown table of the settings, for READMEs and `--help`. */
export function describeConfig(spec: ConfigSpec): string {
  const rows = Object.values(spec).map((setting) => {
    const fallback = !("default" in setting) ? "required" : setting.default === "" ? "unset" : setting.secret ? "(hidden)" : `\`${String(setting.default)}\``;
    return `| \`${setting.env}\` | ${fallback} | ${setting.doc} |`;
  });
  return ["| variable | default | meaning |", "| --- | --- | --- |", ...rows].join("\n");
}

/**
 * The settings every service has, under its own prefix (CATALOG_PORT, ...).
 * A service spreads them into its spec and adds its own.
 */
export function serviceSettings(prefix: string, defaults: { port: number; metricsPort: number; dataDir: string }) {
  return {
    ...telemetrySettings(prefix, defaults.metricsPort),
    host: { env: `${prefix}_HOST`, doc: "Interface the gRPC server binds (0.0.0.0 in containers).", schema: settings.nonEmpty(), default: "127.0.0.1" },
    port: { env: `${prefix}_PORT`, doc: "Port of the gRPC server (0 picks a free one).", schema: settings.port(), default: defaults.port },
    advertiseHost: { env: `${prefix}_ADVERTISE_HOST`, doc: "Host other services reach this instance on, as registered in discovery.", schema: settings.nonEmpty(), default: "127.0.0.1" },
    databaseUrl: {
      env: `${prefix}_DATABASE_URL`,
      doc: "PostgreSQL URL of this service's own database; when unset, embedded PGlite is used.",
      schema: settings.optionalUrl(),
      default: "",
      secret: true,
    },
    dataDir: {
      env: `${prefix}_DATA_DIR`,
      doc: "Embedded PostgreSQL (PGlite) directory when no database URL is set; services of one process naming the same directory share it, each in its own schema (memory:// keeps nothing).",
      schema: settings.nonEmpty(),
      default: defaults.dataDir,
    },
    logLevel: { env: `${prefix}_LOG_LEVEL`, doc: "Log level.", schema: settings.logLevel(), default: "info" },
    maxConnectionAgeMs: {
      env: `${prefix}_MAX_CONNECTION_AGE_MS`,
      doc: "Age after which the gRPC server asks a client to reconnect (HTTP/2 GOAWAY; calls in flight, streams included, finish on the old connection); 0 keeps connections. Off by default: the GC cost that short ages once avoided is removed by the host's HTTP/2 stream tables (see DEFAULT_MAX_CONNECTION_AGE_MS).",
      schema: settings.durationMs(),
      default: DEFAULT_MAX_CONNECTION_AGE_MS,
    },
    shutdownGraceMs: { env: `${prefix}_SHUTDOWN_GRACE_MS`, doc: "How long in-flight calls may run on after a shutdown signal.", schema: settings.durationMs(), default: 10_000 },
    consulAddr: { env: "CONSUL_HTTP_ADDR", doc: "Consul agent (host:port or URL); when set, the service registers there and resolves through it.", schema: settings.text(), default: "" },
    consulToken: { env: "CONSUL_HTTP_TOKEN", doc: "Consul ACL token.", schema: settings.text(), default: "", secret: true },
  } satisfies ConfigSpec;
}

/** "127.0.0.1:8500", "consul:8500" or "https://consul.example:8501" as Consul client options. */
export function parseConsulAddress(text: string): { host: string; port: number; secure: boolean } {
  const url = new URL(text.includes("://") ? text : `http://${text}`);
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error(`CONSUL_HTTP_ADDR: expected http or https, got ${url.protocol}`);
  const secure = url.protocol === "https:";
  return { host: url.hostname.replace(/^\[(.*)\]$/, "$1"), port: url.port ? Number(url.port) : secure ? 443 : 8500, secure };
}
