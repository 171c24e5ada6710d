import {
  Client,
  credentials as grpcCredentials,
  Metadata,
  status,
  type ChannelCredentials,
  type ClientOptions,
  type ServiceError,
} from "@grpc/grpc-js";
import { create, fromBinary, toBinary, type DescMethod, type Message } from "@bufbuild/protobuf";
import { currentCall, REQUEST_ID_HEADER } from "./call-context.js";
import { instanceAddress, type InstanceWatch } from "./discovery/ports.js";
import { Code, RpcError } from "./errors.js";
import { methodPath, type AnyService, type CallOptions, type ServiceClient } from "./service-types.js";
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
  /** Client spans, traceparent propagation and call metrics for this downstream: `telemetry.forClient("catalog")`. */
  readonly telemetry?: ClientTelemetry;
}

export interface ClosableClient<S extends AnyService> {
  readonly client: ServiceClient<S>;
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
  const channels = new ChannelPool(config);
  const client: Record<string, unknown> = {};
  for (const method of service.methods) {
    if (method.methodKind === "unary") {
      client[method.localName] = (request: unknown, options: CallOptions = {}) => unary(channels, config, method, request, options);
    } else if (method.methodKind === "server_streaming") {
      client[method.localName] = (request: unknown, options: CallOptions = {}) =>
        serverStream(channels, config, method, request, options);
    }
  }
  return { client: client as ServiceClient<S>, close: () => channels.close() };
}

/** One grpc-js channel per address; round-robin over the watch's passing instances. */
class ChannelPool {
  private readonly clients = new Map<string, Client>();
  private next = 0;
  private readonly unsubscribe: (() => void) | undefined;

  constructor(private readonly config: ClientConfig) {
    const target = config.target;
    if (typeof target !== "string") {
      // Close channels of instances that left, so a dead address is not kept open.
      this.unsubscribe = target.onChange((instances) => {
        const live = new Set(instances.map(instanceAddress));
        for (const [address, channel] of this.clients) {
          if (!live.has(address)) {
            channel.close();
            this.clients.delete(address);
          }
        }
      });
    }
  }

  async pick(deadline: number): Promise<Client> {
    const target = this.config.target;
    if (typeof target === "string") return this.channel(target);
    let instances = target.instances();
    if (instances.length === 0) {
      await Promise.race([
        target.ready(),
        new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())).unref()),
      ]);
      instances = target.instances();
    }
    if (instances.length === 0) throw new RpcError(Code.UNAVAILABLE, "no passing instance to call");
    const instance = instances[this.next++ % instances.length]!;
    return this.channel(instanceAddress(instance));
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

function prepare(config: ClientConfig, options: CallOptions, fallbackTimeoutMs: number | undefined): Prepared {
  const parent = options.parent === null ? undefined : (options.parent ?? currentCall());
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(options.headers ?? {})) metadata.set(key, value);
  if (parent && !metadata.get(REQUEST_ID_HEADER).length) metadata.set(REQUEST_ID_HEADER, parent.requestId);
  const own = options.timeoutMs ?? fallbackTimeoutMs;
  const candidates = [own === undefined ? undefined : Date.now() + own, parent?.deadline].filter(
    (value): value is number => value !== undefined,
  );
  const deadline = candidates.length ? Math.min(...candidates) : undefined;
  const signals = [options.signal, parent?.signal].filter((signal): signal is AbortSignal => signal !== undefined);
  const signal = signals.length === 0 ? undefined : signals.length === 1 ? signals[0] : AbortSignal.any(signals);
  return { metadata, deadline, signal };
}

function toRpcError(error: ServiceError): RpcError {
  return new RpcError(error.code as Code, error.details || error.message, { metadata: error.metadata ?? new Metadata(), cause: error });
}

function serializer(method: DescMethod) {
  return (value: Message) => Buffer.from(toBinary(method.input, value));
}

async function unary(
  channels: ChannelPool,
  config: ClientConfig,
  method: DescMethod,
  request: unknown,
  options: CallOptions,
): Promise<Message> {
  const { metadata, deadline, signal } = prepare(config, options, config.defaultTimeoutMs ?? 5000);
  const effectiveDeadline = deadline ?? Date.now() + (config.defaultTimeoutMs ?? 5000);
  if (signal?.aborted) throw new RpcError(Code.CANCELLED, "call cancelled before it started");
  if (effectiveDeadline <= Date.now()) throw new RpcError(Code.DEADLINE_EXCEEDED, "deadline passed before the call started");
  const channel = await channels.pick(effectiveDeadline);
  const message = create(method.input, request as never) as Message;
  return new Promise<Message>((resolve, reject) => {
    const call = channel.makeUnaryRequest<Message, Message>(
      methodPath(method),
      serializer(method),
      (bytes: Buffer) => fromBinary(method.output, bytes) as Message,
      message,
      metadata,
      { deadline: effectiveDeadline },
      (error, response) => {
        signal?.removeEventListener("abort", onAbort);
        if (error) reject(toRpcError(error));
        else resolve(response!);
      },
    );
    const onAbort = (): void => call.cancel();
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

async function* serverStream(
  channels: ChannelPool,
  config: ClientConfig,
  method: DescMethod,
  request: unknown,
  options: CallOptions,
): AsyncGenerator<Message> {
  const { metadata, deadline, signal } = prepare(config, options, config.streamTimeoutMs);
  if (signal?.aborted) throw new RpcError(Code.CANCELLED, "call cancelled before it started");
  const channel = await channels.pick(deadline ?? Date.now() + (config.defaultTimeoutMs ?? 5000));
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
