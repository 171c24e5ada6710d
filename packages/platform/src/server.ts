import { Metadata, Server, ServerCredentials, type ServerUnaryCall, type ServerWritableStream, type sendUnaryData, type ServiceDefinition, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { context as otelContext } from "@opentelemetry/api";
import { create, fromBinary, type DescMessage, type DescMethod, type Message } from "@bufbuild/protobuf";
import { HealthImplementation } from "grpc-health-check";
import { deprecationHeaders, type ApiLifecycle } from "./api-deprecation.js";
import { acceptRequestId, REQUEST_ID_HEADER, runInCall, withCall, type CallContext } from "./call-context.js";
import { isDatabaseUnavailable } from "./database-errors.js";
import { Code, codeName, RpcError } from "./rpc-errors.js";
import type { Logger } from "./logger.js";
import { decodingGuardedServer, guardDecoding } from "./decode-guard.js";
import { adoptStreamTablesOf } from "./http2-stream-tables.js";
import { encodeMessage } from "./pooled-encode.js";
import { addLazyReflection } from "./reflection.js";
import { methodPath, type AnyService, type ServiceHandlers } from "./service-types.js";
import { serverSpanStarter, type ServerSpan } from "./telemetry/grpc.js";
import { LOGGER_REQUEST_ID } from "./telemetry/log-context.js";
import type { Telemetry } from "./telemetry/index.js";

export interface GrpcHostOptions {
  /** Service name for logs, e.g. "catalog". */
  readonly name: string;
  readonly log: Logger;
  /** Largest request accepted, in bytes (default 4 MiB). */
  readonly maxReceiveBytes?: number;
  /**
   * How long a client's connection is used before the server asks the client
   * to open a new one (an HTTP/2 GOAWAY; calls in flight on the old one,
   * long streams included, finish there however long they take). Default
   * DEFAULT_MAX_CONNECTION_AGE_MS; 0 keeps connections for ever.
   */
  readonly maxConnectionAgeMs?: number;
  /** A server span per call (when tracing is on) and RED metrics; nothing when omitted. */
  readonly telemetry?: Pick<Telemetry, "tracer" | "metrics">;
  /**
   * Deprecation and sunset dates per API package; the released ones
   * (@meshwork/contracts/api-lifecycle) when omitted. Calls of a deprecated
   * package's services answer `deprecation` and `sunset` metadata and are
   * counted (meshwork_api_deprecated_calls_total).
   */
  readonly lifecycle?: ApiLifecycle;
}

export interface ListenOptions {
  /** Interface to bind, e.g. "0.0.0.0", "127.0.0.1" or "::". */
  readonly host: string;
  /** Port, 0 for any free one. */
  readonly port: number;
}

/**
 * A grpc-js server that mounts protoc-gen-es service descriptors, with
 * grpc.health.v1 and server reflection. Handlers are plain async functions of
 * (request, context); thrown RpcErrors keep their status, anything else becomes
 * INTERNAL with a generic message (the cause is logged, never sent). A
 * request whose bytes do not decode is answered INVALID_ARGUMENT (decode-guard.ts).
 */
export interface GrpcHost {
  add<S extends AnyService>(service: S, handlers: ServiceHandlers<S>): void;
  /** Binds and starts serving (health stays NOT_SERVING until setServing(true)). Returns the bound port. */
  listen(options: ListenOptions): Promise<number>;
  /** Sets the health status of the server ("") and of every mounted service. */
  setServing(serving: boolean): void;
  /**
   * NOT_SERVING, stop accepting, let in-flight calls finish for up to
   * `graceMs`, then cancel whatever is left.
   */
  shutdown(graceMs: number): Promise<{ drained: boolean }>;
  /** Calls in flight right now. */
  inFlight(): number;
  readonly server: Server;
}

/**
 * Off by default (0). Why a server would replace connections at all: V8
 * (Node 20 to 24) promotes everything a Map reaches once the Map's table is
 * in the old generation and the Map keeps changing (a replaced table keeps
 * a link to the next), and Node's HTTP/2 session keeps its streams in such
 * a Map. After a full collection while a connection is busy (every
 * long-running server has them), each of that connection's calls is
 * promoted, costing 20 to 50 µs of GC per call at c=16 on two cores. A new
 * connection's Map starts young, so the state lasts at most a connection's
 * age. Measured with `npm run bench -- host-vs-bare` (whose rounds start
 * after a full collection), main-thread GC pauses per call at c=16, 10 s
 * windows: 18–23 µs without; 4–8 with 2 s; 6–16 with 5 s; 6–23 with 30 s.
 * Over 30 s windows (3 rounds each, bare grpc-js beside it at 12–14): 13
 * without, 6 with 5 s, 10 with 15 s, 16 with 60 s. Only ages of a few
 * seconds help, so it stays off: the host now gives its connections stream
 * tables that do not promote (http2-stream-tables.ts), which removes the
 * cause instead. grpc-js adds ±10% jitter to the age.
 */
export const DEFAULT_MAX_CONNECTION_AGE_MS = 0;

export function createGrpcHost(options: GrpcHostOptions): GrpcHost {
  const maxConnectionAgeMs = options.maxConnectionAgeMs ?? DEFAULT_MAX_CONNECTION_AGE_MS;
  const server = new Server({
    "grpc.max_receive_message_length": options.maxReceiveBytes ?? 4 * 1024 * 1024,
    "grpc.keepalive_permit_without_calls": 1,
    // No grace period: a stream still open on a replaced connection (a watch) is never cut.
    ...(maxConnectionAgeMs > 0 ? { "grpc.max_connection_age_ms": maxConnectionAgeMs } : {}),
  });
  const health = new HealthImplementation({ "": "NOT_SERVING" });
  // Health is served by grpc-health-check: its Check and Watch get the same
  // INVALID_ARGUMENT for undecodable requests as the services (decode-guard.ts).
  health.addToServer(decodingGuardedServer(server) as Server);
  const services: AnyService[] = [];
  let inFlight = 0;
  let reflectionAdded = false;

  const track = {
    begin: () => void inFlight++,
    end: () => void inFlight--,
  };

  return {
    server,
    add(service, handlers) {
      if (reflectionAdded) throw new Error(`cannot add ${service.typeName} after listen()`);
      const definition: Record<string, ServiceDefinition[string]> = {};
      const implementation: UntypedServiceImplementation = {};
      const deprecation = deprecationHeaders(service.typeName, options.lifecycle);
      for (const method of service.methods) {
        const handler = (handlers as Record<string, unknown>)[method.localName];
        if (typeof handler !== "function") {
          throw new Error(`${service.typeName}: no handler for ${method.name} (expected a function "${method.localName}")`);
        }
        definition[method.name] = methodDefinition(method);
        implementation[method.name] = wrapHandler(method, handler as AnyHandler, options.log, track, options.telemetry, deprecation);
      }
      server.addService(...guardDecoding(definition, implementation));
      services.push(service);
      health.setStatus(service.typeName, "NOT_SERVING");
    },
    async listen({ host, port }) {
      if (!reflectionAdded) {
        addLazyReflection(server, services);
        reflectionAdded = true;
      }
      const bound = await new Promise<number>((resolve, reject) => {
        server.bindAsync(formatBindAddress(host, port), ServerCredentials.createInsecure(), (error, actual) => (error ? reject(error) : resolve(actual)));
      });
      // Connections get stream tables that do not promote every call (http2-stream-tables.ts).
      if (!adoptStreamTablesOf(server)) options.log.debug("grpc-js HTTP/2 servers not found: connections keep Node's stream tables");
      return bound;
    },
    setServing(serving) {
      const status = serving ? "SERVING" : "NOT_SERVING";
      health.setStatus("", status);
      for (const service of services) health.setStatus(service.typeName, status);
    },
    inFlight: () => inFlight,
    async shutdown(graceMs) {
      this.setServing(false);
      const drained = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve(false);
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      return { drained };
    },
  };
}

function formatBindAddress(host: string, port: number): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]:${port}` : `${host}:${port}`;
}

type AnyHandler = (request: Message, context: CallContext) => Promise<unknown> | AsyncIterable<unknown>;

function methodDefinition(method: DescMethod): ServiceDefinition[string] {
  if (method.methodKind !== "unary" && method.methodKind !== "server_streaming") {
    throw new Error(`${method.parent.typeName}.${method.name}: ${method.methodKind} RPCs are not supported by the platform host`);
  }
  return {
    path: methodPath(method),
    requestStream: false,
    responseStream: method.methodKind === "server_streaming",
    requestSerialize: (value: Message) => encodeMessage(method.input, value),
    requestDeserialize: (bytes: Buffer) => fromBinary(method.input, bytes),
    responseSerialize: (value: Message) => encodeMessage(method.output, value),
    responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
  };
}

function toMessage(schema: DescMessage, value: unknown): Message {
  return create(schema, value as never) as Message;
}

interface StatusError {
  code: Code;
  details: string;
  metadata: Metadata;
}

function toStatus(error: unknown, log: Logger): StatusError {
  if (error instanceof RpcError) {
    return { code: error.code, details: error.message, metadata: error.metadata };
  }
  if (isDatabaseUnavailable(error)) {
    // Not a bug: the database restarts or fails over. The caller may try again.
    log.warn({ err: error }, "database unavailable");
    return { code: Code.UNAVAILABLE, details: "the service's database is unavailable; try again", metadata: new Metadata() };
  }
  log.error({ err: error }, "handler failed");
  return { code: Code.INTERNAL, details: "internal error", metadata: new Metadata() };
}

/** What every call of one method shares: built once per method, not per call. */
interface MethodSite {
  readonly service: string;
  readonly method: string;
  /** "CatalogService.GetProduct", the `rpc` of the call's log lines. */
  readonly rpc: string;
  readonly log: Logger;
}

type ServedCall = ServerUnaryCall<Message, Message> | ServerWritableStream<Message, Message>;

function cancelReason(): RpcError {
  return new RpcError(Code.CANCELLED, "call cancelled by the client or its deadline");
}

/**
 * A handler's CallContext. Built per call, so it stays cheap: plain fields
 * and prototype methods, and what costs (the AbortController and its
 * listener, the child logger) made only when a handler asks for it.
 */
class HostCallContext implements CallContext {
  readonly service: string;
  readonly method: string;
  readonly requestId: string;
  readonly metadata: Metadata;
  readonly deadline: number | undefined;
  /** Read now: once the call is answered its stream has no socket, and grpc-js says "unknown". */
  readonly peer: string;
  #site: MethodSite;
  /** Until the call is answered (finished()). */
  #call: ServedCall | undefined;
  #controller: AbortController | undefined;
  #log: Logger | undefined;

  constructor(site: MethodSite, call: ServedCall) {
    this.#site = site;
    this.#call = call;
    this.service = site.service;
    this.method = site.method;
    this.metadata = call.metadata;
    this.requestId = acceptRequestId(call.metadata.get(REQUEST_ID_HEADER)[0]);
    const rawDeadline = call.getDeadline();
    const deadlineMs = rawDeadline instanceof Date ? rawDeadline.getTime() : rawDeadline;
    this.deadline = Number.isFinite(deadlineMs) ? deadlineMs : undefined;
    this.peer = call.getPeer();
  }

  timeoutMs(): number | undefined {
    return this.deadline === undefined ? undefined : Math.max(0, this.deadline - Date.now());
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      const controller = new AbortController();
      this.#controller = controller;
      // grpc-js marks the call cancelled, then emits "cancelled"; it also does
      // both when a finished call's stream closes: only a call still running
      // (one this context still holds) is really cancelled.
      const call = this.#call;
      if (call?.cancelled) controller.abort(cancelReason());
      else {
        call?.once("cancelled", () => {
          if (this.#call) controller.abort(cancelReason());
        });
      }
    }
    return this.#controller.signal;
  }

  get log(): Logger {
    if (!this.#log) {
      const log = this.#site.log.child({ requestId: this.requestId, rpc: this.#site.rpc });
      // Its lines name the request id wherever they are written (log-context.ts).
      (log as Logger & { [LOGGER_REQUEST_ID]?: string })[LOGGER_REQUEST_ID] = this.requestId;
      this.#log = log;
    }
    return this.#log;
  }

  /**
   * The call is answered: a "cancelled" from now on is its stream closing.
   * The context lets go of grpc-js's call (its stream, buffers, listeners):
   * a context kept longer, by a handler or inside an async context, must
   * not keep the whole call alive with it.
   */
  finished(): void {
    this.#call = undefined;
  }
}

function wrapHandler(
  method: DescMethod,
  handler: AnyHandler,
  baseLog: Logger,
  track: { begin(): void; end(): void },
  telemetry: GrpcHostOptions["telemetry"],
  deprecation: Readonly<Record<string, string>> | undefined,
): UntypedServiceImplementation[string] {
  const service = method.parent.typeName;
  const site: MethodSite = { service, method: method.name, rpc: `${method.parent.name}.${method.name}`, log: baseLog };
  const tracer = telemetry?.tracer;
  const startSpan = tracer ? serverSpanStarter(tracer, service, method.name) : undefined;
  const recordCall = telemetry?.metrics.serverCallsOf(service, method.name);

  const countDeprecated = deprecation ? telemetry?.metrics.deprecatedCall : undefined;
  const deprecationEntries = deprecation ? Object.entries(deprecation) : [];
  const responseHeaders = (context: CallContext): Metadata => {
    const headers = new Metadata();
    headers.set(REQUEST_ID_HEADER, context.requestId);
    if (deprecation) {
      // Every call of a deprecated package says so, and is counted, whatever its outcome.
      for (const [name, value] of deprecationEntries) headers.set(name, value);
      countDeprecated?.(service, method.name);
    }
    return headers;
  };

  /**
   * Runs `work(...args)` in the call's scope: inside its server span's
   * context, which carries the call too, when tracing is on (downstream
   * calls, queries and log lines join the span); else in the call scope
   * alone (call-context.ts), entered only when the process can read it.
   */
  const inCall = <A extends unknown[], T>(context: HostCallContext, span: ServerSpan | undefined, work: (...args: A) => T, ...args: A): T =>
    span ? otelContext.with(withCall(span.context, context), work, undefined, ...args) : runInCall(context, work, ...args);

  const finish = (context: HostCallContext, started: number, code: Code, span?: ServerSpan, message?: string): void => {
    context.finished();
    track.end();
    recordCall?.(code, (performance.now() - started) / 1000);
    // INTERNAL and UNKNOWN were already logged with their cause.
    if (code !== Code.INTERNAL && code !== Code.UNKNOWN && baseLog.isLevelEnabled("debug")) {
      // Written in the call's scope, so the line carries its trace and request id.
      inCall(context, span, () => context.log.debug({ code: codeName(code), durationMs: Math.round(performance.now() - started) }, "call finished"));
    }
    span?.end(code, message);
  };

  /** The handler's outcome as a status, its cause logged in the call's span. */
  const failed = (context: HostCallContext, span: ServerSpan | undefined, error: unknown): StatusError =>
    span ? otelContext.with(span.context, toStatus, undefined, error, context.log) : toStatus(error, context.log);

  if (method.methodKind === "unary") {
    const unaryHandler = handler as (request: Message, context: CallContext) => Promise<unknown>;
    return ((call: ServerUnaryCall<Message, Message>, callback: sendUnaryData<Message>) => {
      track.begin();
      const started = performance.now();
      const context = new HostCallContext(site, call);
      const span = startSpan?.(call.metadata);
      call.sendMetadata(responseHeaders(context));
      let outcome: Promise<unknown>;
      try {
        outcome = inCall(context, span, unaryHandler, call.request, context);
      } catch (error) {
        // A handler that throws instead of rejecting is answered the same way.
        outcome = Promise.reject(error);
      }
      outcome.then(
        (result) => {
          let response: Message;
          try {
            response = toMessage(method.output, result);
          } catch (error) {
            const status = failed(context, span, error);
            finish(context, started, status.code, span, status.details);
            callback(status);
            return;
          }
          finish(context, started, Code.OK, span);
          callback(null, response);
        },
        (error: unknown) => {
          const status = failed(context, span, error);
          finish(context, started, status.code, span, status.details);
          callback(status);
        },
      );
    }) as never;
  }

  return ((call: ServerWritableStream<Message, Message>) => {
    track.begin();
    const started = performance.now();
    const context = new HostCallContext(site, call);
    // Listened to from the start: the pump stops when the reader goes away.
    const signal = context.signal;
    const span = startSpan?.(call.metadata);
    call.sendMetadata(responseHeaders(context));
    // The whole pump runs inside the call's scope: a generator's body resumes
    // in the async context of whoever calls next(), which is this loop.
    const pump = async (): Promise<void> => {
      const iterable = handler(call.request, context) as AsyncIterable<unknown>;
      for await (const item of iterable) {
        if (signal.aborted) break;
        if (!call.write(toMessage(method.output, item))) {
          // Honour back-pressure: a slow reader must not make us buffer without bound.
          await new Promise<void>((resolve) => {
            const done = (): void => {
              call.off("drain", done);
              signal.removeEventListener("abort", done);
              resolve();
            };
            call.on("drain", done);
            signal.addEventListener("abort", done);
          });
        }
      }
    };
    inCall(context, span, pump).then(
      () => {
        finish(context, started, Code.OK, span);
        if (!signal.aborted) call.end();
      },
      (error: unknown) => {
        const status = failed(context, span, error);
        finish(context, started, status.code, span, status.details);
        if (!signal.aborted) call.emit("error", status);
      },
    );
  }) as never;
}
