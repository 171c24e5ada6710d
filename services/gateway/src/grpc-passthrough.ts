/**
 * The gateway's gRPC path: unary gRPC calls (HTTP/2, `application/grpc` or
 * `application/grpc+proto`, uncompressed) to a forwarded service are served
 * here, without Connect, passing the request and the answer through as bytes,
 * on the raw HTTP/2 stream (edge-server.ts offers each stream here before it
 * makes Node's compatibility request and response for Connect).
 * Everything else (Connect, gRPC-web, HTTP/1.1, streams, compressed messages,
 * the gateway's own services, anything unusual in the headers) goes to
 * Connect as before, and Connect answers it, errors included.
 *
 * Why by hand: connect-node serves the gRPC protocol through its universal
 * handler (Fetch Headers, an AbortController, async iterables per call) and
 * the gateway then decoded each request only for the platform client to
 * encode it again, and the same for the answer. `npm run bench -- edge`
 * measured GetProduct through the gateway at 1,456 µs of server CPU per call
 * (gateway and catalog, c=16) against 639 through a bare grpc-js proxy, and
 * cache hits at 0.37 of direct's calls/s. No library serves gRPC and shares
 * a port with Connect and HTTP/1.1 this way; grpc-js's server cannot take
 * over single streams of another server's sessions.
 *
 * What the edge promises holds here too, from the same code: the request gate
 * (request id, per-address limit, token, per-user limit, deprecation headers,
 * the span and RED metrics) is the very gate Connect runs (main.ts builds it
 * once for both); upstream calls carry the same headers, deadline and
 * cancellation (upstream.ts); statuses come back through the same
 * translation (toConnectError), encoded by Connect's own trailer codec; the
 * catalog cache is the one Connect's handlers use. The request is decoded
 * once, to refuse what is not a valid message at the edge (as Connect does),
 * but the bytes that go on are the caller's own.
 */
import { constants as h2, type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import { fromBinary, type DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues } from "@connectrpc/connect";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { REQUEST_ID_HEADER, type BytesUnaryCall, type Logger } from "@meshwork/platform";
import { logCall } from "./access-log.js";
import { requestIdKey, type GateContext, type RequestGate } from "./edge-context.js";
import type { EdgeStreamHandler } from "./edge-server.js";
import type { EdgeTelemetry } from "./edge-telemetry.js";
import { CachedAnswer, cacheKey, sharedAnswer, STALE_HEADER } from "./forward.js";
import type { TtlCache } from "./ttl-cache.js";
import { AUTHORIZATION_HEADER, toConnectError, upstreamHeaders } from "./upstream.js";

/** A unary method served on the gRPC path. */
export interface PassthroughMethod {
  readonly method: DescMethod;
  /** The backend's client, bytes in, bytes out (the platform client's unaryBytes). */
  readonly call: BytesUnaryCall;
  /** Pass the caller's `authorization` on (the route's forwardAuthorization). */
  readonly forwardAuthorization: boolean;
  /** The route's answer cache, when it has one. */
  readonly cache?: TtlCache<CachedAnswer>;
}

export interface GrpcPassthroughOptions {
  /** The methods served here, by request path ("/shop.catalog.v1.CatalogService/GetProduct"). */
  readonly methods: ReadonlyMap<string, PassthroughMethod>;
  /** The request gate, the same Connect runs. */
  readonly gate: RequestGate;
  readonly telemetry: Pick<EdgeTelemetry, "within" | "settle">;
  /** The call's context values as Connect's adapter would start them (the client address, from the TCP peer and X-Forwarded-For). */
  readonly contextValues: (peer: string | undefined, headers: IncomingHttpHeaders) => ContextValues;
  /** Largest request message in bytes (Connect's readMaxBytes). */
  readonly maxRequestBytes: number;
  /** Longest deadline of an upstream call. */
  readonly upstreamTimeoutMs: number;
  readonly log: Logger;
}

/** Takes an HTTP/2 stream and answers it (true), or leaves it to Connect (false). */
export type GrpcPassthrough = EdgeStreamHandler;

/** What Connect answers gRPC binary calls with. */
const RESPONSE_CONTENT_TYPE = "application/grpc+proto";
/** A gRPC message's frame: a flag byte (bit 0: compressed) and the length, big-endian. */
const FRAME_HEADER_BYTES = 5;

export function createGrpcPassthrough(options: GrpcPassthroughOptions): GrpcPassthrough {
  const { log } = options;
  return (stream, headers) => {
    if (headers[":method"] !== "POST") return false;
    const served = options.methods.get(headers[":path"] ?? "");
    if (served === undefined) return false;
    const contentType = headers["content-type"];
    if (contentType !== "application/grpc" && contentType !== "application/grpc+proto") return false;
    const encoding = headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false;
    const timeoutHeader = headers["grpc-timeout"];
    let timeoutMs: number | undefined;
    if (timeoutHeader !== undefined) {
      const parsed = parseTimeout(typeof timeoutHeader === "string" ? timeoutHeader : null, Number.MAX_SAFE_INTEGER);
      // Connect answers a malformed timeout (INVALID_ARGUMENT, in its words).
      if (parsed.error !== undefined || parsed.timeoutMs === undefined) return false;
      timeoutMs = parsed.timeoutMs;
    }
    // A raw stream has no error listener of its own (the compatibility layer
    // adds one): a reset or a write after the client left must not become an
    // uncaught exception. What it means for the call shows as "close".
    stream.on("error", ignoreStreamError);
    void serve(stream, headers, served, timeoutMs === undefined ? undefined : Date.now() + timeoutMs).catch((error: unknown) => {
      // Nothing above throws past its own catch; if it ever does, the stream must not hang.
      log.error({ err: error, rpc: headers[":path"] }, "gRPC path failed to answer");
      stream.close(h2.NGHTTP2_INTERNAL_ERROR);
    });
    return true;
  };

  async function serve(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, served: PassthroughMethod, deadline: number | undefined): Promise<void> {
    const { method } = served;
    const started = performance.now();
    const responseHeader = new HeaderBag();
    const values = options.contextValues(stream.session?.socket?.remoteAddress, headers);
    const ctx: GateContext = { method, requestHeader: { get: (name) => headerValue(headers, name) }, responseHeader, values };
    try {
      await options.gate(ctx);
    } catch (error) {
      // Refused: the gate has recorded it (span, metrics); the body is never read.
      answer(stream, responseHeader, undefined, toConnectError(error, log, values.get(requestIdKey)));
      return;
    }
    const requestId = values.get(requestIdKey);
    let failure: ConnectError | undefined;
    let bytes: Uint8Array | undefined;
    try {
      const message = await readMessage(stream, options.maxRequestBytes);
      // A fresh cache entry is answered at once: its key is these very bytes,
      // which decoded when the entry was loaded, and there is nothing to cancel.
      const key = served.cache && cacheKey(method, message);
      bytes = key === undefined ? undefined : served.cache?.get(key)?.bytes();
      if (bytes === undefined) {
        refuseUndecodable(method, message, requestId, headers[":path"]);
        bytes = await cancelledWithCaller(stream, (signal) =>
          options.telemetry.within(values, () =>
            served.cache && key !== undefined ? load(served, served.cache, key, message, requestId, deadline, signal, responseHeader) : forward(served, ctx, message, deadline, signal),
          ),
        );
      }
    } catch (error) {
      failure = toConnectError(error, log, requestId);
    }
    options.telemetry.settle(values, failure?.code ?? (0 as Code), failure?.rawMessage);
    logCall(log, { rpc: `${method.parent.name}.${method.name}`, via: "grpc-passthrough", values, started, code: failure?.code });
    answer(stream, responseHeader, bytes, failure);
  }

  /** A request that is not a valid message is refused at the edge, naming the type, as Connect refuses it (public-errors.ts). */
  function refuseUndecodable(method: DescMethod, message: Uint8Array, requestId: string, rpc: string | undefined): void {
    try {
      fromBinary(method.input, message);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      log.info({ request_id: requestId, rpc, detail: reason }, "request body could not be decoded");
      throw new ConnectError(`request body is not a valid ${method.input.typeName} (${reason}); request id ${requestId}`, Code.InvalidArgument);
    }
  }

  function forward(served: PassthroughMethod, ctx: GateContext, message: Uint8Array, deadline: number | undefined, signal: AbortSignal): Promise<Uint8Array> {
    const remaining = deadline === undefined ? Number.POSITIVE_INFINITY : deadline - Date.now();
    const authorization = served.forwardAuthorization ? ctx.requestHeader.get(AUTHORIZATION_HEADER) : null;
    return served.call(served.method, message, {
      headers: upstreamHeaders(ctx.values, authorization),
      signal,
      timeoutMs: Math.max(0, Math.min(remaining, options.upstreamTimeoutMs)),
      // The edge starts the chain: there is no platform call context to inherit from.
      parent: null,
    });
  }

  /** As forward.ts's cached reads: one shared load per key, with the gateway's own deadline; stale answers while the backend is down. */
  async function load(
    served: PassthroughMethod,
    cache: TtlCache<CachedAnswer>,
    key: string,
    message: Uint8Array,
    requestId: string,
    deadline: number | undefined,
    signal: AbortSignal,
    responseHeader: HeaderBag,
  ): Promise<Uint8Array> {
    const loadAnswer = async () =>
      CachedAnswer.ofBytes(served.method.output, await served.call(served.method, message, { headers: { [REQUEST_ID_HEADER]: requestId }, timeoutMs: options.upstreamTimeoutMs, parent: null }));
    // The shared load runs on the gateway's own deadline; this caller waits only until its own.
    const expired = new AbortController();
    const timer = deadline === undefined ? undefined : setTimeout(() => expired.abort(new ConnectError("the call's deadline passed", Code.DeadlineExceeded)), deadline - Date.now());
    try {
      const waitUntil = timer === undefined ? signal : AbortSignal.any([signal, expired.signal]);
      return (await sharedAnswer(cache, key, loadAnswer, waitUntil, () => responseHeader.set(STALE_HEADER, "true"))).bytes();
    } finally {
      clearTimeout(timer);
    }
  }
}

/** `work`, given a signal that aborts when the caller hangs up: the upstream call (or the wait for a shared load) is cancelled then. */
async function cancelledWithCaller<T>(stream: ServerHttp2Stream, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const cancel = new AbortController();
  const onClose = (): void => cancel.abort(new ConnectError("the client went away", Code.Canceled));
  stream.once("close", onClose);
  try {
    return await work(cancel.signal);
  } finally {
    stream.off("close", onClose);
  }
}

function ignoreStreamError(): void {}

/**
 * The one message of a unary request, unframed. Refusals say what is wrong
 * with the body, as Connect's would: too large (RESOURCE_EXHAUSTED, before
 * the rest is read), compressed without an encoding, or not exactly one message.
 */
function readMessage(request: ServerHttp2Stream, maxBytes: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const done = (error: ConnectError | undefined, message?: Uint8Array): void => {
      request.off("data", onData);
      request.off("end", onEnd);
      request.off("aborted", onAborted);
      request.off("close", onAborted);
      if (error) reject(error);
      else resolve(message!);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      length += chunk.length;
      if (length < FRAME_HEADER_BYTES) return;
      const head = chunks.length === 1 ? chunk : Buffer.concat(chunks);
      const declared = head.readUInt32BE(1);
      if (declared > maxBytes) done(new ConnectError(`message size ${declared} is larger than configured readMaxBytes ${maxBytes}`, Code.ResourceExhausted));
      else if (length > FRAME_HEADER_BYTES + declared) done(new ConnectError("request body holds more than the one message of a unary call", Code.InvalidArgument));
    };
    const onEnd = (): void => {
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      const problem =
        body.length === 0
          ? "request body holds no message: a unary call sends one"
          : body.length < FRAME_HEADER_BYTES || body.length !== FRAME_HEADER_BYTES + body.readUInt32BE(1)
            ? "request body ends inside its message frame"
            : (body[0]! & 1) !== 0
              ? "request message is flagged compressed but the call names no grpc-encoding"
              : undefined;
      if (problem !== undefined) done(new ConnectError(problem, Code.InvalidArgument));
      else done(undefined, body.subarray(FRAME_HEADER_BYTES));
    };
    const onAborted = (): void => done(new ConnectError("the client went away", Code.Canceled));
    request.on("data", onData);
    request.on("end", onEnd);
    request.on("aborted", onAborted);
    // A stream closed before its end (reset by the client) may not say "aborted" first.
    request.on("close", onAborted);
  });
}

/** The trailers of every answered call. */
const OK_TRAILERS: Readonly<Record<string, string>> = { "grpc-status": "0" };

/** Headers then trailers, as connect-node's gRPC answers are: the message (if any) between, the status in the trailers. */
function answer(stream: ServerHttp2Stream, responseHeader: HeaderBag, message: Uint8Array | undefined, failure: ConnectError | undefined): void {
  // A stream the client reset or closed meanwhile cannot be answered (respond would throw).
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  const fields = responseHeader.fields;
  fields[":status"] = "200";
  fields["content-type"] = RESPONSE_CONTENT_TYPE;
  const trailers = failure !== undefined || message === undefined ? errorTrailers(failure ?? new ConnectError("no answer", Code.Internal)) : OK_TRAILERS;
  stream.respond(fields, { waitForTrailers: true });
  stream.once("wantTrailers", () => stream.sendTrailers(trailers));
  if (trailers !== OK_TRAILERS) {
    stream.end();
    return;
  }
  const body = message!;
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.byteLength);
  frame[0] = 0;
  frame.writeUInt32BE(body.byteLength, 1);
  frame.set(body, FRAME_HEADER_BYTES);
  stream.end(frame);
}

/** A failure's status as gRPC trailers, encoded by Connect's own codec (grpc-message percent-encoded, the error's metadata as fields). */
function errorTrailers(failure: ConnectError): Record<string, string> {
  const trailer = setTrailerStatus(new Headers(), failure);
  const fields: Record<string, string> = {};
  trailer.forEach((value, name) => {
    fields[name] = value;
  });
  return fields;
}

/** A request header as Fetch Headers would give it: null when absent, repeated values joined with ", ". */
function headerValue(headers: IncomingHttpHeaders, name: string): string | null {
  const value = headers[name.toLowerCase()];
  if (value === undefined) return null;
  return typeof value === "string" ? value : value.join(", ");
}

/** The response headers the gate sets, as a plain record for writeHead (Fetch Headers would cost more than the whole answer). */
class HeaderBag implements Pick<Headers, "set"> {
  readonly fields: Record<string, string> = {};

  set(name: string, value: string): void {
    this.fields[name.toLowerCase()] = value;
  }
}

/** Every unary method of the routes, by request path, with what `serving` says of its route. */
export function passthroughMethods<Route extends { readonly service: { readonly methods: readonly DescMethod[] } }>(
  routes: readonly Route[],
  serving: (route: Route) => Omit<PassthroughMethod, "method">,
): ReadonlyMap<string, PassthroughMethod> {
  const methods = new Map<string, PassthroughMethod>();
  for (const route of routes) {
    const shared = serving(route);
    for (const method of route.service.methods) {
      if (method.methodKind === "unary") methods.set(`/${method.parent.typeName}/${method.name}`, { ...shared, method });
    }
  }
  return methods;
}
