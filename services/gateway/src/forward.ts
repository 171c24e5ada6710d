/**
 * Handlers that forward every RPC of a routed service to its backend over
 * the platform's grpc-js client (same protoc-gen-es descriptors on both
 * sides, so messages pass through without conversion). They are built from
 * the descriptor, method by method, so a new RPC in a public contract is
 * served without code here.
 */
import { fromBinary, toBinary, type DescMessage, type DescMethod, type Message } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { encodeMessage, FastFailError, isDownstreamFailure, REQUEST_ID_HEADER, type CallOptions, type Logger } from "@meshwork/platform";
import { untilAborted } from "./abortable.js";
import { requestIdKey } from "./edge-context.js";
import type { ForwardedService } from "./routes.js";
import type { TtlCache } from "./ttl-cache.js";
import { toConnectError, upstreamCallOptions } from "./upstream.js";

type UnaryCall = (request: unknown, options: CallOptions) => Promise<unknown>;
type StreamCall = (request: unknown, options: CallOptions) => AsyncIterable<unknown>;

export interface ForwardingOptions {
  /** A platform ServiceClient of the route's service. */
  readonly client: object;
  readonly upstreamTimeoutMs: number;
  /** Aborted when the gateway shuts down: open streams end so clients reconnect elsewhere. */
  readonly streamsClosing: AbortSignal;
  /** Unary answers served from here for a short while (the catalog's reads). */
  readonly cache?: TtlCache<CachedAnswer>;
  readonly log: Logger;
}

/** A Connect service implementation forwarding each method of `route.service`. */
export function createForwardingImplementation(route: ForwardedService, options: ForwardingOptions): Record<string, unknown> {
  const implementation: Record<string, unknown> = {};
  for (const method of route.service.methods) {
    const call = (options.client as Record<string, unknown>)[method.localName];
    if (typeof call !== "function") throw new Error(`${route.service.typeName}: the ${route.backend} client has no ${method.localName}`);
    if (method.methodKind === "unary") {
      implementation[method.localName] = options.cache ? cachedUnary(method, call as UnaryCall, options.cache, options) : forwardUnary(call as UnaryCall, route, options);
    } else if (method.methodKind === "server_streaming") {
      implementation[method.localName] = forwardStream(call as StreamCall, route, options);
    }
    // Client and bidi streaming are not in any contract, and the platform host cannot serve them.
  }
  return implementation;
}

function forwardUnary(call: UnaryCall, route: ForwardedService, options: ForwardingOptions) {
  return async (request: unknown, ctx: HandlerContext): Promise<unknown> => {
    try {
      return await call(request, upstreamCallOptions(ctx, "unary", { maxTimeoutMs: options.upstreamTimeoutMs, forwardAuthorization: route.forwardAuthorization }));
    } catch (error) {
      throw toConnectError(error, options.log, ctx.values.get(requestIdKey));
    }
  };
}

function forwardStream(call: StreamCall, route: ForwardedService, options: ForwardingOptions) {
  return async function* (request: unknown, ctx: HandlerContext): AsyncGenerator<unknown> {
    const callOptions = upstreamCallOptions(ctx, "stream", {
      maxTimeoutMs: options.upstreamTimeoutMs,
      forwardAuthorization: route.forwardAuthorization,
      signal: options.streamsClosing,
    });
    try {
      // Each message is passed on as it arrives; Connect writes it before
      // asking for the next, so a slow reader slows the backend stream too.
      for await (const message of call(request, callOptions)) yield message;
    } catch (error) {
      if (options.streamsClosing.aborted) throw new ConnectError("the gateway is shutting down: call again", Code.Unavailable);
      throw toConnectError(error, options.log, ctx.values.get(requestIdKey));
    }
  };
}

/** Response header saying an answer came from the cache after the backend failed. */
export const STALE_HEADER = "x-meshwork-stale";

/**
 * A cached answer, as a message (what Connect's handlers return) or as its
 * encoded bytes (what the gRPC path sends on, grpc-passthrough.ts): one cache
 * serves both paths, each form made from the other once, when first asked for.
 */
export class CachedAnswer {
  private constructor(
    private readonly schema: DescMessage,
    private decoded: Message | undefined,
    private encoded: Uint8Array | undefined,
  ) {}

  static ofMessage(schema: DescMessage, message: Message): CachedAnswer {
    return new CachedAnswer(schema, message, undefined);
  }

  static ofBytes(schema: DescMessage, bytes: Uint8Array): CachedAnswer {
    return new CachedAnswer(schema, undefined, bytes);
  }

  message(): Message {
    this.decoded ??= fromBinary(this.schema, this.encoded!);
    return this.decoded;
  }

  bytes(): Uint8Array {
    this.encoded ??= toBinary(this.schema, this.decoded!);
    return this.encoded;
  }
}

/** The cache key of a unary request: the method and the request's encoding (the same message encodes to the same bytes). */
export function cacheKey(method: DescMethod, request: Uint8Array): string {
  return `${method.name}:${Buffer.from(request.buffer, request.byteOffset, request.byteLength).toString("base64")}`;
}

/**
 * Cached unary reads. One load per key is shared by every caller waiting for
 * it, so it cannot carry any one caller's deadline or cancellation (the first
 * caller hanging up must not fail the others): it runs with the gateway's own
 * upstream deadline and the first caller's request id, and each caller waits
 * for it only as long as its own deadline and connection last.
 */
function cachedUnary(method: DescMethod, call: UnaryCall, cache: TtlCache<CachedAnswer>, options: ForwardingOptions) {
  return async (request: unknown, ctx: HandlerContext): Promise<unknown> => {
    const key = cacheKey(method, encodeMessage(method.input, request as never));
    // A fresh answer is returned as is: waiting on it through a promise and
    // an abort listener (below) is only worth it when there is a load to wait for.
    const fresh = cache.get(key);
    if (fresh !== undefined) return fresh.message();
    const load = async () =>
      CachedAnswer.ofMessage(method.output, (await call(request, { headers: { [REQUEST_ID_HEADER]: ctx.values.get(requestIdKey) }, timeoutMs: options.upstreamTimeoutMs, parent: null })) as Message);
    try {
      return (await sharedAnswer(cache, key, load, ctx.signal, () => ctx.responseHeader.set(STALE_HEADER, "true"))).message();
    } catch (error) {
      throw toConnectError(error, options.log, ctx.values.get(requestIdKey));
    }
  };
}

/**
 * The answer under `key` for a cache miss, on either path (Connect's
 * handlers above, the gRPC path's bytes): one `load` shared by every caller
 * waiting for the key, each waiting only until its own `signal` aborts. The
 * fallback: while the backend is down (or its breaker or bulkhead refuses),
 * the last good answer within the stale window beats an error, after
 * `markStale` (the header saying it is old).
 */
export async function sharedAnswer(cache: TtlCache<CachedAnswer>, key: string, load: () => Promise<CachedAnswer>, signal: AbortSignal, markStale: () => void): Promise<CachedAnswer> {
  try {
    return await untilAborted(cache.getOrLoad(key, load), signal);
  } catch (error) {
    const stale = isDownstreamFailure(error) || error instanceof FastFailError ? cache.getStale(key) : undefined;
    if (stale === undefined) throw error;
    markStale();
    return stale;
  }
}
