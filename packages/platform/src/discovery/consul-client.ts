/**
 * What the Consul adapters (discovery and live config) share: how to build a
 * client from connection settings, and a blocking-query loop that survives
 * errors. Kept here rather than in each adapter so both retry the same way.
 */
import Consul from "consul";
import type { Logger } from "../logger.js";

export interface ConsulConnection {
  readonly host: string;
  readonly port: number;
  /** HTTPS instead of HTTP. */
  readonly secure?: boolean;
  /** ACL token, sent as X-Consul-Token on every request. Never logged. */
  readonly token?: string;
}

export type ConsulClient = InstanceType<typeof Consul>;

export function createConsulClient(connection: ConsulConnection): ConsulClient {
  return new Consul({
    host: connection.host,
    port: connection.port,
    ...(connection.secure === undefined ? {} : { secure: connection.secure }),
    ...(connection.token === undefined ? {} : { defaults: { token: connection.token } }),
  });
}

/** HTTP status of a failed consul call, when the failure was an HTTP answer. */
export function consulErrorStatus(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const response = (error as { response?: { statusCode?: unknown } }).response;
  return typeof response?.statusCode === "number" ? response.statusCode : undefined;
}

/** Loggable summary of a failed consul call: message, HTTP status or socket error code. */
export function describeConsulError(error: unknown): { message: string; status?: number; code?: string } {
  const message = error instanceof Error ? error.message : String(error);
  const status = consulErrorStatus(error);
  const code = typeof error === "object" && error !== null && typeof (error as { code?: unknown }).code === "string" ? (error as { code: string }).code : undefined;
  return {
    message,
    ...(status === undefined ? {} : { status }),
    ...(code === undefined ? {} : { code }),
  };
}

/**
 * Consul's ACL refusal (403) as a sentence that names the fix, or undefined
 * for any other failure. Consul says "ACL not found" for a token it does not
 * know, and "Permission denied: token with AccessorID '...' lacks permission
 * 'key:read' on ..." for a known token without the right; the secret itself
 * is never part of either.
 */
export function describeAclRefusal(error: unknown, connection: Pick<ConsulConnection, "token">): string | undefined {
  if (consulErrorStatus(error) !== 403) return undefined;
  // The consul package keeps only short bodies in its message ("forbidden" otherwise): Consul's own words are in the body.
  const body = (error as { response?: { body?: unknown } }).response?.body;
  const text = Buffer.isBuffer(body) ? body.toString("utf8") : typeof body === "string" ? body : error instanceof Error ? error.message : String(error);
  const said = text.trim() || "403";
  if (connection.token === undefined || connection.token === "") {
    return `Consul refused an anonymous request (${said}): no ACL token is configured; set CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE to this service's token`;
  }
  if (/ACL not found/i.test(said)) {
    return `Consul does not know this service's ACL token (${said}): CONSUL_HTTP_TOKEN / CONSUL_HTTP_TOKEN_FILE holds a token that was never created or was deleted`;
  }
  return `this service's Consul ACL token lacks a permission (${said}): its policy must grant it (deploy/consul/acl-policies.ts)`;
}

/** A Consul call refused by ACLs; the message says which permission and how to fix it. */
export class ConsulAclError extends Error {
  readonly status = 403;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConsulAclError";
  }
}

export interface BlockingWatchOptions {
  readonly client: ConsulClient;
  /** A method of `client` that takes options, e.g. `client.kv.get`. */
  readonly method: (...args: never[]) => Promise<unknown>;
  /** Its options; `index` and `wait` are added by the watch on every request. */
  readonly options: Record<string, string>;
  /** Longest time Consul holds one blocking query, e.g. "30s". */
  readonly wait: string;
  /** Upper bound of the retry backoff after errors. */
  readonly retryMaxMs: number;
  /** Called with the body and headers of every answer whose X-Consul-Index moved. */
  readonly onData: (data: unknown, headers: Readonly<Record<string, string | string[] | undefined>>) => void;
  /** Called after every failed query; the watch retries by itself. */
  readonly onError: (error: unknown) => void;
  readonly log: Logger;
  /** Names the watch in logs, e.g. { service: "catalog" }. */
  readonly logContext: Record<string, string>;
}

export interface BlockingWatch {
  stop(): void;
}

/**
 * Runs blocking queries (?index=N&wait=...) through the consul package's
 * Watch, which retries failures with exponential backoff by itself. That Watch
 * gives up for good on a 400 or a response without X-Consul-Index; a service
 * must not lose its view of the world because of one odd answer, so the loop
 * starts a fresh Watch after `retryMaxMs` in that case.
 */
export function startBlockingWatch(options: BlockingWatchOptions): BlockingWatch {
  const { client, log, logContext } = options;
  let stopped = false;
  let current: ReturnType<ConsulClient["watch"]> | undefined;
  let restartTimer: NodeJS.Timeout | undefined;

  function start(): void {
    const watch = client.watch({
      method: options.method,
      options: { ...options.options, wait: options.wait },
      backoffMax: options.retryMaxMs,
    });
    current = watch;
    watch.on("change", (data: unknown, res: { headers?: Record<string, string | string[] | undefined> } | undefined) => {
      if (!stopped) options.onData(data, res?.headers ?? {});
    });
    // Without this listener an error event would throw out of the emitter.
    watch.on("error", (error: unknown) => {
      if (!stopped) options.onError(error);
    });
    watch.on("end", () => {
      if (stopped || current !== watch) return;
      log.error({ ...logContext, retryInMs: options.retryMaxMs }, "consul watch ended on an unrecoverable answer; starting a new one");
      restartTimer = setTimeout(() => {
        restartTimer = undefined;
        if (!stopped) start();
      }, options.retryMaxMs);
    });
  }

  start();

  return {
    stop() {
      if (stopped) return;
      stopped = true;
      if (restartTimer !== undefined) clearTimeout(restartTimer);
      // end() also aborts the query in flight, so nothing outlives stop().
      current?.end();
    },
  };
}
