import { Client, credentials as grpcCredentials, Metadata, status, type ChannelCredentials, type ClientOptions, type ServiceError } from "@grpc/grpc-js";
import { create, fromBinary, type DescMethod, type Message } from "@bufbuild/protobuf";
import { currentCall, REQUEST_ID_HEADER, wantCallScope } from "./call-context.js";
import { instanceAddress, type InstanceWatch } from "./discovery/ports.js";
import { Code, RpcError } from "./rpc-errors.js";
import { methodPath, type AnyService, type CallOptions, type ServiceClient } from "./service-types.js";
import { adoptGrpcClientTables } from "./http2-stream-tables.js";
import { adoptLeanAsyncBind } from "./lean-async-bind.js";
import { encodeMessage } from "./pooled-encode.js";
import { createInstanceBalancer, type InstanceBalancer, type InstanceStats } from "./resilience/instance-balancer.js";
import { createDownstreamPolicy, isDownstreamFailure, type BreakerState, type DownstreamPolicy, type PolicyCounters } from "./resilience/policy.js";
import { DEFAULT_RESILIENCE, type ResilienceSettings } from "./resilience/settings.js";
import type { LiveValue } from "./live-config/ports.js";
import type { Logger } from "./logger.js";
import type { ClientTelemetry } from "./telemetry/index.js";

export interface ClientConfig {
  /** "host:port" to dial, or a discovery watch whose passing instances are used in turn. */
  readonly target: string | InstanceWatch;
  /** Deadline of a call that sets none (and has no parent deadline), in ms. Default 5000. */
  readonly defaultTimeoutMs?: number;
  /** Deadline of server-streaming calls that set none; default: none (they may run until cancelled). */
  readonly streamTimeoutMs?: number;
  readonly credentials?: ChannelCredentials;
  readonly channelOptions?: ClientOptions;
  /** The downstream's name in errors, logs and metrics, e.g. "payments". Default: the service's type name. */
  readonly name?: string;
  /**
   * Retries, retry budget, breaker, bulkhead and ejection towards this
   * downstream: fixed settings, or a live value (bindResilienceSettings).
   * Default: DEFAULT_RESILIENCE.
   */
  readonly resilience?: ResilienceSettings | LiveValue<ResilienceSettings>;
  /**
   * Unary methods (local names, e.g. "getProduct") that are safe to send
   * twice: only these are retried. A method not listed is tried once.
   */
  readonly idempotentMethods?: readonly string[];
  /** Where breaker changes are logged ("circuit breaker open" at warn, back to closed at info). */
  readonly log?: Logger;
  /**
   * Client spans, traceparent propagation, call metrics and the breaker-state
   * gauge of this client: `telemetry.forClient(name)`, under the same name as `name`.
   */
  readonly telemetry?: ClientTelemetry;
}

/** What a client knows about its downstream, for dashboards, metrics and tests. */
export interface DownstreamView {
  readonly name: string;
  breakerState(): BreakerState;
  onBreakerChange(listener: (state: BreakerState) => void): () => void;
  /** Every instance the client has called or can call, with its recent latency and ejection. */
  instance(address: string): InstanceStats;
  readonly counters: Readonly<PolicyCounters>;
  /** Retry tokens left. */
  retryTokens(): number;
}

/**
 * A unary call of one of the service's methods with the request and the
 * answer as encoded protobuf bytes: the same deadline, retry, breaker,
 * bulkhead, ejection and telemetry as the typed client, without decoding
 * and encoding. For a proxy that passes messages through (the gateway's
 * gRPC path), where decoding only to encode again is most of a hop's cost.
 */
export type BytesUnaryCall = (method: DescMethod, request: Uint8Array, options?: CallOptions) => Promise<Uint8Array>;

export interface ClosableClient<S extends AnyService> {
  readonly client: ServiceClient<S>;
  /** Unary calls as bytes in, bytes out; throws for a method that is not one of the service's unary methods. */
  readonly unaryBytes: BytesUnaryCall;
  readonly downstream: DownstreamView;
  /** Closes every channel. */
  close(): void;
}

/**
 * A typed, promise-based client of one service over grpc-js, built from the
 * same protoc-gen-es descriptor the server mounts. Every unary call has a
 * deadline: its own, else the client default, never later than the parent
 * call's. The parent's request id travels as x-request-id.
 */
export function createClient<S extends AnyService>(service: S, config: ClientConfig): ClosableClient<S> {
  // From now on, handlers in this process run in their call scope: what this client reads the parent call from.
  wantCallScope();
  // And its calls stop promoting themselves to the old generation: Node's
  // AsyncResource bind (lean-async-bind.ts), then the connection's stream
  // tables and grpc-js's set of calls in flight (http2-stream-tables.ts).
  adoptLeanAsyncBind();
  adoptGrpcClientTables();
  const name = config.name ?? service.typeName;
  const resilience = config.resilience ?? DEFAULT_RESILIENCE;
  const settings = "get" in resilience ? () => resilience.get() : () => resilience;
  const balancer = createInstanceBalancer(() => settings().ejection);
  const channels = new ChannelPool(config, balancer);
  const policy = createDownstreamPolicy(name, settings);
  const idempotent = new Set(config.idempotentMethods ?? []);
  const telemetry = config.telemetry;
  if (telemetry) {
    // meshwork_client_circuit_breaker_state{downstream}: the state now, then every change.
    telemetry.setBreakerState(policy.breakerState());
    policy.onBreakerChange((state) => telemetry.setBreakerState(state));
  }
  const log = config.log;
  if (log) {
    policy.onBreakerChange((state) => {
      const counters = { ...policy.counters };
      if (state === "closed") log.info({ downstream: name, breaker: state, counters }, "circuit breaker closed");
      else log.warn({ downstream: name, breaker: state, counters }, `circuit breaker ${state}`);
    });
  }
  for (const localName of idempotent) {
    if (!service.methods.some((method) => method.localName === localName && method.methodKind === "unary")) {
      throw new Error(`idempotentMethods: ${service.typeName} has no unary method "${localName}"`);
    }
  }
  const client: Record<string, unknown> = {};
  const unaryMethods = new Set<DescMethod>();
  for (const method of service.methods) {
    if (method.methodKind === "unary") {
      unaryMethods.add(method);
      const retried = idempotent.has(method.localName);
      const codec = messageCodec(method);
      client[method.localName] = (request: unknown, options: CallOptions = {}) => unary(channels, policy, retried, config, method, codec, create(method.input, request as never) as Message, options);
    } else if (method.methodKind === "server_streaming") {
      client[method.localName] = (request: unknown, options: CallOptions = {}) => serverStream(channels, config, method, request, options);
    }
  }
  const downstream: DownstreamView = {
    name,
    breakerState: () => policy.breakerState(),
    onBreakerChange: (listener) => policy.onBreakerChange(listener),
    instance: (address) => balancer.stats(address),
    counters: policy.counters,
    retryTokens: () => policy.budget.tokens(),
  };
  const unaryBytes: BytesUnaryCall = (method, request, options = {}) => {
    if (!unaryMethods.has(method)) return Promise.reject(new Error(`${service.typeName} has no unary method ${method.parent.typeName}.${method.name}`));
    return unary(channels, policy, idempotent.has(method.localName), config, method, BYTES, Buffer.from(request.buffer, request.byteOffset, request.byteLength), options);
  };
  return { client: client as ServiceClient<S>, unaryBytes, downstream, close: () => channels.close() };
}

/** One grpc-js channel per address; the balancer picks among the watch's passing instances. */
class ChannelPool {
  private readonly clients = new Map<string, Client>();
  private readonly unsubscribe: (() => void) | undefined;

  constructor(
    private readonly config: ClientConfig,
    private readonly balancer: InstanceBalancer,
  ) {
    const target = config.target;
    if (typeof target !== "string") {
      // Close channels of instances that left, so a dead address is not kept open.
      this.unsubscribe = target.onChange((instances) => {
        const live = new Set(instances.map(instanceAddress));
        balancer.retain(live);
        for (const [address, channel] of this.clients) {
          if (!live.has(address)) {
            channel.close();
            this.clients.delete(address);
          }
        }
      });
    }
  }

  async pick(deadline: number, signal: AbortSignal | undefined, failed?: readonly string[]): Promise<{ address: string; channel: Client }> {
    const target = this.config.target;
    if (typeof target === "string") return { address: target, channel: this.channel(target) };
    let instances = target.instances();
    if (instances.length === 0) {
      // Waits for discovery's first answer, until the deadline or the caller gives up.
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
        timer.unref();
        signal?.addEventListener("abort", done, { once: true });
        target.ready().then(done, done);
      });
      if (signal?.aborted) throw new RpcError(Code.CANCELLED, "call cancelled while waiting for a passing instance");
      instances = target.instances();
    }
    if (instances.length === 0) throw new RpcError(Code.UNAVAILABLE, "no passing instance to call");
    const address = this.balancer.pick(instances.map(instanceAddress), failed);
    return { address, channel: this.channel(address) };
  }

  private channel(address: string): Client {
    let channel = this.clients.get(address);
    if (!channel) {
      channel = new Client(address, this.config.credentials ?? grpcCredentials.createInsecure(), {
        "grpc.keepalive_time_ms": 30_000,
        // grpc-js backs off reconnects up to 120 s by default; inside a mesh a
        // restarted instance should be dialled again within seconds.
        "grpc.initial_reconnect_backoff_ms": 250,
        "grpc.max_reconnect_backoff_ms": 5_000,
        ...this.config.channelOptions,
        // Telemetry rides on grpc-js's own interceptor chain: one place, every call kind, every attempt.
        ...(this.config.telemetry ? { interceptors: [...(this.config.channelOptions?.interceptors ?? []), this.config.telemetry.interceptor] } : {}),
      });
      this.clients.set(address, channel);
    }
    return channel;
  }

  record(address: string, durationMs: number, failed: boolean): void {
    this.balancer.record(address, durationMs, failed);
  }

  close(): void {
    this.unsubscribe?.();
    for (const channel of this.clients.values()) channel.close();
    this.clients.clear();
  }
}

interface Prepared {
  readonly metadata: Metadata;
  readonly deadline: number | undefined;
  readonly signal: AbortSignal | undefined;
}

function prepare(options: CallOptions, fallbackTimeoutMs: number | undefined): Prepared {
  const parent = options.parent === null ? undefined : (options.parent ?? currentCall());
  const metadata = new Metadata();
  const headers = options.headers;
  if (headers) for (const key in headers) metadata.set(key, headers[key]!);
  if (parent && !metadata.get(REQUEST_ID_HEADER).length) metadata.set(REQUEST_ID_HEADER, parent.requestId);
  // The earlier of the call's own deadline and the parent's (no arrays: this runs on every call).
  const own = options.timeoutMs ?? fallbackTimeoutMs;
  let deadline = own === undefined ? undefined : Date.now() + own;
  const inherited = parent?.deadline;
  if (inherited !== undefined && (deadline === undefined || inherited < deadline)) deadline = inherited;
  const parentSignal = parent?.signal;
  const signal = options.signal && parentSignal ? AbortSignal.any([options.signal, parentSignal]) : (options.signal ?? parentSignal);
  return { metadata, deadline, signal };
}

function toRpcError(error: ServiceError): RpcError {
  return new RpcError(error.code as Code, error.details || error.message, { metadata: error.metadata ?? new Metadata(), cause: error });
}

function serializer(method: DescMethod) {
  return (value: Message) => encodeMessage(method.input, value);
}

/** How a unary call's request goes onto the wire and its answer comes off it. */
interface Codec<Request, Response> {
  readonly serialize: (request: Request) => Buffer;
  readonly deserialize: (bytes: Buffer) => Response;
}

function messageCodec(method: DescMethod): Codec<Message, Message> {
  return { serialize: serializer(method), deserialize: (bytes) => fromBinary(method.output, bytes) as Message };
}

/** Bytes as they are, both ways. */
const BYTES: Codec<Buffer, Buffer> = { serialize: (bytes) => bytes, deserialize: (bytes) => bytes };

async function unary<Request, Response>(
  channels: ChannelPool,
  policy: DownstreamPolicy,
  idempotent: boolean,
  config: ClientConfig,
  method: DescMethod,
  codec: Codec<Request, Response>,
  request: Request,
  options: CallOptions,
): Promise<Response> {
  const { metadata, deadline, signal } = prepare(options, config.defaultTimeoutMs ?? 5000);
  const effectiveDeadline = deadline ?? Date.now() + (config.defaultTimeoutMs ?? 5000);
  const tries: Tries = { failedOn: undefined };
  return policy.run(() => attempt(channels, methodPath(method), codec, request, metadata, effectiveDeadline, signal, tries), { idempotent, deadline: effectiveDeadline, signal });
}

/** One logical call's attempts so far: the instances it failed on, which its retries avoid. */
interface Tries {
  failedOn: string[] | undefined;
}

/** One try on one instance; its outcome feeds that instance's ejection and latency. */
async function attempt<Request, Response>(
  channels: ChannelPool,
  path: string,
  codec: Codec<Request, Response>,
  request: Request,
  metadata: Metadata,
  effectiveDeadline: number,
  signal: AbortSignal | undefined,
  tries: Tries,
): Promise<Response> {
  if (signal?.aborted) throw new RpcError(Code.CANCELLED, "call cancelled before it started");
  if (effectiveDeadline <= Date.now()) throw new RpcError(Code.DEADLINE_EXCEEDED, "deadline passed before the call started");
  const { address, channel } = await channels.pick(effectiveDeadline, signal, tries.failedOn);
  const started = performance.now();
  return new Promise<Response>((resolve, reject) => {
    const call = channel.makeUnaryRequest<Request, Response>(path, codec.serialize, codec.deserialize, request, metadata, { deadline: effectiveDeadline }, (error, response) => {
      signal?.removeEventListener("abort", onAbort);
      const failure = error ? toRpcError(error) : undefined;
      channels.record(address, performance.now() - started, failure !== undefined && isDownstreamFailure(failure));
      if (failure) {
        if (tries.failedOn === undefined) tries.failedOn = [address];
        else tries.failedOn.push(address);
        reject(failure);
      } else resolve(response!);
    });
    const onAbort = (): void => call.cancel();
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

async function* serverStream(channels: ChannelPool, config: ClientConfig, method: DescMethod, request: unknown, options: CallOptions): AsyncGenerator<Message> {
  const { metadata, deadline, signal } = prepare(options, config.streamTimeoutMs);
  if (signal?.aborted) throw new RpcError(Code.CANCELLED, "call cancelled before it started");
  const { channel } = await channels.pick(deadline ?? Date.now() + (config.defaultTimeoutMs ?? 5000), signal);
  const message = create(method.input, request as never) as Message;
  const call = channel.makeServerStreamRequest<Message, Message>(
    methodPath(method),
    serializer(method),
    (bytes: Buffer) => fromBinary(method.output, bytes) as Message,
    message,
    metadata,
    deadline === undefined ? {} : { deadline },
  );
  const onAbort = (): void => call.cancel();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const item of call) yield item as Message;
  } catch (error) {
    if (isServiceError(error)) throw toRpcError(error);
    throw error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    call.cancel();
  }
}

function isServiceError(error: unknown): error is ServiceError {
  return typeof error === "object" && error !== null && "code" in error && typeof (error as { code: unknown }).code === "number" && status[(error as { code: number }).code] !== undefined;
}
