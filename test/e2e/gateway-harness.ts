/**
 * Helpers for tests through the real gateway: backends to put behind it
 * (embedded on PGlite), a
 * stand-in NotificationService that records what reaches it, and clients of
 * every protocol the gateway speaks.
 *
 * The real shop (PostgreSQL, RabbitMQ) behind a gateway comes from
 * shop-harness.ts: its addresses, and `defer` to stop the gateway first.
 */
import { randomUUID } from "node:crypto";
import { EventEmitter, once } from "node:events";
import http2 from "node:http2";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestScope } from "@meshwork/testing";
import type { DescService } from "@bufbuild/protobuf";
import { createClient as createConnectClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { startCatalog } from "@meshwork/catalog";
import type { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { NotificationService } from "@meshwork/contracts/shop/notifications/v1/notifications";
import { startGateway } from "@meshwork/gateway";
import { startIdentity } from "@meshwork/identity";
import { Code, createGrpcHost, createLogger, createSilentLogger, invalidArgument, RpcError } from "@meshwork/platform";

/** A port nothing listens on: calls to it fail at once with UNAVAILABLE. */
export const CLOSED_ADDRESS = "127.0.0.1:1";

export interface Backends {
  readonly identity: number;
  readonly catalog: number;
}

/** Identity and catalog on embedded PGlite (nothing kept), in this process. */
export async function startEmbeddedBackends(t: TestScope): Promise<Backends> {
  // One embedded server for both, each in its schema (as npm start runs them): starting PGlite takes seconds.
  const dataDir = await mkdtemp(path.join(tmpdir(), "meshwork-backends-"));
  t.onTestFinished(() => rm(dataDir, { recursive: true, force: true }));
  const identity = await startIdentity({ IDENTITY_PORT: "0", IDENTITY_DATA_DIR: dataDir, IDENTITY_SCRYPT_N: "1024", IDENTITY_LOG_LEVEL: "warn" });
  t.onTestFinished(async () => {
    await identity.shutdown.run("test done");
  });
  const catalog = await startCatalog({ CATALOG_PORT: "0", CATALOG_DATA_DIR: dataDir, CATALOG_LOG_LEVEL: "warn" });
  t.onTestFinished(async () => {
    await catalog.shutdown.run("test done");
  });
  return { identity: identity.port, catalog: catalog.port };
}

export interface SeenCall {
  readonly method: string;
  readonly requestId: string;
  /** Milliseconds from arrival to the call's deadline, or undefined without one. */
  readonly timeoutMs: number | undefined;
  readonly authorization: string | undefined;
  /** x-meshwork-client-address: who the gateway says the caller is. */
  readonly clientAddress: string | undefined;
}

/**
 * A NotificationService served by the platform host that records every call.
 * The real notifications service is being written beside the gateway; this
 * stand-in serves the same contract and lets tests look at what arrives.
 *
 * ListNotifications: page_size 101 is INVALID_ARGUMENT naming the field;
 * page_token "hold" waits for release() or cancellation. WatchNotifications
 * sends whatever push() is given, until cancelled.
 * Events: "call" (SeenCall), "held", "hold-ended" (aborted: boolean),
 * "watch-started", "watch-ended".
 */
export interface NotificationsStandIn {
  readonly address: string;
  readonly calls: SeenCall[];
  readonly events: EventEmitter;
  push(subject: string): void;
  release(): void;
}

export async function startNotificationsStandIn(t: TestScope): Promise<NotificationsStandIn> {
  const events = new EventEmitter();
  const calls: SeenCall[] = [];
  const holds = new Set<() => void>();
  const host = createGrpcHost({ name: "notifications-stand-in", log: createSilentLogger() });
  const record = (method: string, context: { requestId: string; timeoutMs(): number | undefined; metadata: { get(key: string): unknown[] } }): void => {
    const authorization = context.metadata.get("authorization")[0];
    const clientAddress = context.metadata.get("x-meshwork-client-address");
    const call = {
      method,
      requestId: context.requestId,
      timeoutMs: context.timeoutMs(),
      authorization: typeof authorization === "string" ? authorization : undefined,
      // Joined, so a second value (one a client slipped through) would show.
      clientAddress: clientAddress.length === 0 ? undefined : clientAddress.join(","),
    };
    calls.push(call);
    events.emit("call", call);
  };
  host.add(NotificationService, {
    async listNotifications(request, context) {
      record("ListNotifications", context);
      if (request.pageSize === 101) throw invalidArgument("page_size", "must be from 1 to 100");
      if (request.pageToken === "hold") {
        const aborted = await new Promise<boolean>((resolve) => {
          const release = (): void => resolve(false);
          holds.add(release);
          context.signal.addEventListener("abort", () => {
            holds.delete(release);
            resolve(true);
          });
          events.emit("held");
        });
        events.emit("hold-ended", aborted);
        if (aborted) throw new RpcError(Code.CANCELLED, "cancelled");
      }
      return { notifications: [{ id: "n-1", userId: "u-1", subject: "Order confirmed" }], nextPageToken: "" };
    },
    async *watchNotifications(_request, context) {
      record("WatchNotifications", context);
      const queue: string[] = [];
      let wake: (() => void) | undefined;
      const onPush = (subject: string): void => {
        queue.push(subject);
        wake?.();
      };
      events.on("push", onPush);
      const onAbort = (): void => wake?.();
      context.signal.addEventListener("abort", onAbort);
      events.emit("watch-started");
      try {
        while (!context.signal.aborted) {
          const subject = queue.shift();
          if (subject !== undefined) {
            yield { notification: { id: randomUUID(), userId: "u-1", subject } };
            continue;
          }
          await new Promise<void>((resolve) => (wake = resolve));
        }
      } finally {
        events.off("push", onPush);
        events.emit("watch-ended");
      }
    },
  });
  const port = await host.listen({ host: "127.0.0.1", port: 0 });
  host.setServing(true);
  t.onTestFinished(async () => {
    await host.shutdown(0);
  });
  return {
    address: `127.0.0.1:${port}`,
    calls,
    events,
    push: (subject) => void events.emit("push", subject),
    release: () => {
      for (const release of holds) release();
      holds.clear();
    },
  };
}

export interface RunningTestGateway {
  readonly port: number;
  readonly baseUrl: string;
  readonly shutdown: () => Promise<boolean>;
  /** Every log line the gateway writes, parsed, as "line" events (at GATEWAY_LOG_LEVEL). */
  readonly logs: EventEmitter;
}

/**
 * Starts the gateway on port 0 with `env`; shut down when the test ends, or
 * through `defer` (a GatewayShop's), so it stops before the backends it calls.
 */
export async function startTestGateway(
  t: TestScope,
  env: Record<string, string>,
  defer: (step: () => unknown) => void = (step) =>
    t.onTestFinished(async () => {
      await step();
    }),
): Promise<RunningTestGateway> {
  const logs = new EventEmitter();
  const log = createLogger({
    service: "gateway",
    level: env.GATEWAY_LOG_LEVEL ?? "warn",
    destination: {
      write(line: string) {
        const entry = JSON.parse(line) as { level: string };
        // Tests may capture info lines; only what the default level would print is shown.
        if (entry.level === "warn" || entry.level === "error" || entry.level === "fatal") process.stdout.write(line);
        logs.emit("line", entry);
      },
    },
  });
  const gateway = await startGateway({ GATEWAY_PORT: "0", GATEWAY_LOG_LEVEL: "warn", ...env }, { log });
  defer(() => gateway.shutdown.run("test done"));
  return { port: gateway.port, baseUrl: `http://127.0.0.1:${gateway.port}`, shutdown: () => gateway.shutdown.run("test"), logs };
}

/** Resolves with the first log entry `matches` accepts, or rejects after `timeoutMs`. */
export function nextLog(logs: EventEmitter, matches: (entry: Record<string, unknown>) => boolean, timeoutMs = 10_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      logs.off("line", onLine);
      reject(new Error("the expected log line did not come"));
    }, timeoutMs);
    const onLine = (entry: Record<string, unknown>): void => {
      if (!matches(entry)) return;
      clearTimeout(timer);
      logs.off("line", onLine);
      resolve(entry);
    };
    logs.on("line", onLine);
  });
}

/** Live rate limits high enough that tests which do not test them never meet them. */
export const GENEROUS_LIMITS: Record<string, string> = {
  MESHWORK_LIVE_GATEWAY_RATE_LIMIT_PER_USER_RPS: "100000",
  MESHWORK_LIVE_GATEWAY_RATE_LIMIT_PER_USER_BURST: "100000",
  MESHWORK_LIVE_GATEWAY_RATE_LIMIT_PER_ADDRESS_RPS: "100000",
  MESHWORK_LIVE_GATEWAY_RATE_LIMIT_PER_ADDRESS_BURST: "100000",
};

/**
 * Node's HTTP/2 client buffers an outgoing request in its session and resets
 * the stream itself (ENHANCE_YOUR_CALM) past `maxSessionMemory`, 10 MB by
 * default: raised here so a test can send the gateway a 10 MB message at all.
 */
const H2_CLIENT = { nodeOptions: { maxSessionMemory: 64 } } as const;

/** One transport per protocol and HTTP version the gateway serves to Connect clients. */
export function transportsFor(baseUrl: string) {
  return {
    "Connect JSON over HTTP/1.1": createConnectTransport({ baseUrl, httpVersion: "1.1" }),
    "Connect binary over h2c": createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true, ...H2_CLIENT }),
    "gRPC-web over HTTP/1.1": createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
    "gRPC-web over h2c": createGrpcWebTransport({ baseUrl, httpVersion: "2", ...H2_CLIENT }),
    "gRPC over h2c": createGrpcTransport({ baseUrl, ...H2_CLIENT }),
  } satisfies Record<string, Transport>;
}

export const connectClient = <S extends DescService>(service: S, transport: Transport): Client<S> => createConnectClient(service, transport);

/** Signs a new user up and in through `identity` (any protocol); returns the authorization header value. */
export async function signedInShopper(identity: Client<typeof IdentityService>, name = "shopper"): Promise<{ userId: string; authorization: string }> {
  const email = `${name}-${randomUUID()}@example.test`;
  const password = "correct horse battery";
  const { user } = await identity.signUp({ email, password, displayName: name });
  const { accessToken } = await identity.signIn({ email, password });
  return { userId: user!.id, authorization: `Bearer ${accessToken}` };
}

/** Resolves with the next `event` the emitter sends, or rejects after `timeoutMs`. */
export async function nextEvent<T = unknown>(emitter: EventEmitter, event: string, timeoutMs = 10_000): Promise<T> {
  const [value] = (await once(emitter, event, { signal: AbortSignal.timeout(timeoutMs) })) as [T];
  return value;
}

/** One raw HTTP/2 request; returns status, headers, body and trailers. */
export async function h2Post(baseUrl: string, path: string, headers: Record<string, string>, body: Uint8Array) {
  const session = http2.connect(baseUrl);
  try {
    const stream = session.request({ ":method": "POST", ":path": path, ...headers });
    const chunks: Buffer[] = [];
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    stream.on("response", (h) => (responseHeaders = h));
    stream.on("trailers", (h) => (trailers = h));
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.end(body);
    await new Promise<void>((resolve, reject) => {
      stream.on("end", resolve);
      stream.on("error", reject);
    });
    return { status: Number(responseHeaders[":status"]), headers: responseHeaders, body: Buffer.concat(chunks), trailers };
  } finally {
    session.close();
  }
}

/** One gRPC message frame: the flags byte (bit 0: compressed), the length big-endian, the bytes. */
export function grpcFrame(flags: number, payload: Uint8Array): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(flags, 0);
  head.writeUInt32BE(payload.byteLength, 1);
  return Buffer.concat([head, payload]);
}
