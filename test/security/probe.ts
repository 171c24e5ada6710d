/**
 * The hostile-input probe's parts: every RPC of every generated contract,
 * hostile payloads built from each method's input descriptor, and one raw
 * sender per protocol the gateway speaks (raw, because a real client would
 * refuse to send most of these bytes).
 */
import { readdir } from "node:fs/promises";
import http2 from "node:http2";
import path from "node:path";
import { fromJson, ScalarType, toBinary, type DescField, type DescMessage, type DescMethod, type DescService, type JsonValue } from "@bufbuild/protobuf";

const CONTRACTS = path.resolve(import.meta.dirname, "../../packages/contracts/src/gen");

/** Every service in packages/contracts' generated code: a new contract or RPC is probed without a change here. */
export async function contractServices(): Promise<DescService[]> {
  const files = (await readdir(CONTRACTS, { recursive: true })).filter((file) => file.endsWith("_pb.ts")).sort();
  const services = new Map<string, DescService>();
  for (const file of files) {
    const module = (await import(`@meshwork/contracts/${file.replace(/_pb\.ts$/, "").replaceAll(path.sep, "/")}`)) as Record<string, unknown>;
    for (const value of Object.values(module)) {
      const desc = value as Partial<DescService> | undefined;
      if (desc?.kind === "service" && desc.typeName) services.set(desc.typeName, desc as DescService);
    }
  }
  return [...services.values()];
}

export type Protocol = "Connect JSON" | "Connect binary" | "gRPC-web" | "gRPC";
export const PROTOCOLS: readonly Protocol[] = ["Connect JSON", "Connect binary", "gRPC-web", "gRPC"];

/**
 * What the gateway must answer:
 * - "invalid": INVALID_ARGUMENT (HTTP 400 for Connect unary);
 * - "too-large": RESOURCE_EXHAUSTED or HTTP 413;
 * - "unsupported": HTTP 415;
 * - "tolerated": anything but a server error; the bytes are a valid request
 *   (unknown fields are skipped, as protobuf requires; odd strings and
 *   numbers are the services' to judge, and they refuse what breaks a rule).
 */
export type Expectation = "invalid" | "too-large" | "unsupported" | "tolerated";

export interface ProbeCase {
  readonly name: string;
  readonly expect: Expectation;
  /** The request body (whole, as sent; enveloped already where the protocol envelopes). */
  readonly body: Uint8Array;
  readonly contentType: string;
}

const enc = new TextEncoder();

function envelope(flags: number, payload: Uint8Array, declaredLength = payload.byteLength): Uint8Array {
  const bytes = new Uint8Array(5 + payload.byteLength);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, flags);
  view.setUint32(1, declaredLength);
  bytes.set(payload, 5);
  return bytes;
}

/** Field 1 promising 5 bytes and carrying 1; a tag cut in half; a varint that never ends. */
const MALFORMED: readonly [string, Uint8Array][] = [
  ["malformed: truncated field", Uint8Array.from([0x0a, 0x05, 0x41])],
  ["malformed: cut tag", Uint8Array.from([0xff])],
  ["malformed: unterminated varint", Uint8Array.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])],
];

/** Field 1000, varint 1: unknown to every message (protobuf keeps or skips it). */
const UNKNOWN_FIELD = Uint8Array.from([0xc0, 0x3e, 0x01]);

/** Field 1000 as bytes of `size`: a message of that size that is otherwise well-formed. */
function largeMessage(size: number): Uint8Array {
  const lengthBytes: number[] = [];
  for (let rest = size; ; rest >>>= 7) {
    if (rest < 0x80) {
      lengthBytes.push(rest);
      break;
    }
    lengthBytes.push((rest & 0x7f) | 0x80);
  }
  return Uint8Array.from([0xc2, 0x3e, ...lengthBytes, ...new Uint8Array(size)]);
}

type Scalars = (type: ScalarType) => JsonValue;

const HUGE: Scalars = (type) => {
  switch (type) {
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return 2147483647;
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return 4294967295;
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return "9223372036854775807";
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return "18446744073709551615";
    case ScalarType.FLOAT:
    case ScalarType.DOUBLE:
      return "Infinity";
    case ScalarType.BOOL:
      return true;
    case ScalarType.STRING:
      return "x".repeat(4096);
    case ScalarType.BYTES:
      return Buffer.alloc(4096, 1).toString("base64");
  }
};

const NEGATIVE: Scalars = (type) => (type === ScalarType.STRING ? "x" : type === ScalarType.BYTES ? "" : type === ScalarType.BOOL ? false : -1);

/** Numbers no field of the type can hold, in the JSON form protobuf uses for them. */
const OVERFLOW: Scalars = (type) => {
  switch (type) {
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return 2147483648;
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return 4294967296;
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return "9223372036854775808";
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return "18446744073709551616";
    case ScalarType.FLOAT:
      return 1e39;
    default:
      return HUGE(type);
  }
};

const text =
  (value: string): Scalars =>
  (type) =>
    type === ScalarType.STRING ? value : type === ScalarType.BYTES ? "" : type === ScalarType.BOOL ? true : 1;

const UNICODE: readonly [string, string][] = [
  ["lone surrogate", "a\ud800b"],
  ["NUL", "a\u0000b"],
  ["bidi controls", "\u202egnp.exe\u2066x\u2069"],
  ["zero-width and BOM", "\u200b\u200d\ufeffx"],
];

/** A JSON value for `desc` with every field set (nested messages to depth 2), scalars from `scalar`. */
function sample(desc: DescMessage, scalar: Scalars, depth = 0): Record<string, JsonValue> {
  const json: Record<string, JsonValue> = {};
  const seenOneofs = new Set<string>();
  for (const field of desc.fields) {
    // Two members of a oneof make any message invalid: one is set, so other values are judged.
    if (field.oneof) {
      if (seenOneofs.has(field.oneof.name)) continue;
      seenOneofs.add(field.oneof.name);
    }
    const value = fieldValue(field, scalar, depth);
    if (value !== undefined) json[field.jsonName] = value;
  }
  return json;
}

function fieldValue(field: DescField, scalar: Scalars, depth: number): JsonValue | undefined {
  const single = (): JsonValue | undefined => {
    if (field.scalar !== undefined) return scalar(field.scalar);
    if (field.enum) return 1;
    if (field.message) {
      if (depth >= 2 || field.message.typeName.startsWith("google.protobuf.")) return undefined;
      return sample(field.message, scalar, depth + 1);
    }
    return undefined;
  };
  const value = single();
  if (value === undefined) return undefined;
  if (field.fieldKind === "list") return [value];
  if (field.fieldKind === "map") return { k: value };
  return value;
}

/** The binary form of a JSON sample, when protobuf-es accepts it (an out-of-range JSON value has none). */
function binaryOf(desc: DescMessage, json: JsonValue): Uint8Array | undefined {
  try {
    return toBinary(desc, fromJson(desc, json));
  } catch {
    return undefined;
  }
}

const streaming = (method: DescMethod): boolean => method.methodKind !== "unary";

/** Every hostile request for `method` over `protocol`, with what the gateway must answer. */
export function probeCases(method: DescMethod, protocol: Protocol, maxRequestBytes: number): ProbeCase[] {
  const input = method.input;
  const cases: ProbeCase[] = [];
  const oversized = largeMessage(maxRequestBytes + 1024);
  const values: [string, Expectation, Record<string, JsonValue>][] = [
    ["out of range: negative numbers", "tolerated", sample(input, NEGATIVE)],
    ["out of range: largest numbers, 4 KiB strings", "tolerated", sample(input, HUGE)],
    ...UNICODE.map(([name, value]): [string, Expectation, Record<string, JsonValue>] => [`unicode: ${name}`, "tolerated", sample(input, text(value))]),
  ];

  if (protocol === "Connect JSON") {
    const type = streaming(method) ? "application/connect+json" : "application/json";
    const wrap = (payload: Uint8Array): Uint8Array => (streaming(method) ? envelope(0, payload) : payload);
    cases.push({ name: "malformed JSON", expect: "invalid", contentType: type, body: wrap(enc.encode('{"a":')) });
    cases.push({ name: "JSON that is not an object", expect: "invalid", contentType: type, body: wrap(enc.encode("[1,2,3]")) });
    cases.push({ name: "invalid UTF-8 in JSON", expect: "tolerated", contentType: type, body: wrap(Uint8Array.from([...enc.encode('{"x":"'), 0xc3, 0x28, ...enc.encode('"}')])) });
    // connect-es ignores unknown JSON keys by default (its getJsonOptions), as protobuf binary skips unknown fields:
    // a newer client's request still reaches an older gateway. The keys that could pollute prototypes are among them.
    cases.push({
      name: "unknown JSON keys, __proto__ and constructor among them",
      expect: "tolerated",
      contentType: type,
      body: wrap(enc.encode('{"noSuchField":1,"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}')),
    });
    const overflow = sample(input, OVERFLOW);
    const hasNumbers = JSON.stringify(overflow) !== JSON.stringify(sample(input, HUGE));
    cases.push({ name: "out of range: int32/int64 overflow", expect: hasNumbers ? "invalid" : "tolerated", contentType: type, body: wrap(enc.encode(JSON.stringify(overflow))) });
    for (const [name, expect, json] of values) cases.push({ name, expect, contentType: type, body: wrap(enc.encode(JSON.stringify(json))) });
    cases.push({ name: "oversized", expect: "too-large", contentType: type, body: wrap(enc.encode(JSON.stringify({ x: "y".repeat(maxRequestBytes + 1024) }))) });
    if (streaming(method)) cases.push({ name: "truncated envelope", expect: "invalid", contentType: type, body: envelope(0, enc.encode("{}"), 100) });
    cases.push({ name: "wrong content type", expect: "unsupported", contentType: "text/plain", body: enc.encode("{}") });
    return cases;
  }

  const enveloped = protocol !== "Connect binary" || streaming(method);
  const type = protocol === "gRPC" ? "application/grpc" : protocol === "gRPC-web" ? "application/grpc-web+proto" : streaming(method) ? "application/connect+proto" : "application/proto";
  const wrap = (payload: Uint8Array): Uint8Array => (enveloped ? envelope(0, payload) : payload);
  for (const [name, bytes] of MALFORMED) cases.push({ name, expect: "invalid", contentType: type, body: wrap(bytes) });
  cases.push({ name: "unknown field", expect: "tolerated", contentType: type, body: wrap(UNKNOWN_FIELD) });
  for (const [name, expect, json] of values) {
    const binary = binaryOf(input, json);
    if (binary) cases.push({ name, expect, contentType: type, body: wrap(binary) });
  }
  cases.push({ name: "oversized", expect: "too-large", contentType: type, body: wrap(oversized) });
  if (enveloped) {
    cases.push({ name: "truncated envelope (promises 100 bytes, sends 3)", expect: "invalid", contentType: type, body: envelope(0, Uint8Array.from([0x0a, 0x01, 0x41]), 100) });
    cases.push({ name: "incomplete envelope header", expect: "invalid", contentType: type, body: Uint8Array.from([0, 0]) });
    cases.push({ name: "compressed flag without an encoding", expect: "invalid", contentType: type, body: envelope(1, Uint8Array.from([0x0a, 0x01, 0x41])) });
  } else {
    cases.push({ name: "truncated message", expect: "invalid", contentType: type, body: Uint8Array.from([0x0a, 0x7f, 0x41, 0x42]) });
  }
  cases.push({ name: "wrong content type", expect: "unsupported", contentType: protocol === "gRPC" ? "application/grpc+xml" : "text/plain", body: wrap(Uint8Array.of()) });
  return cases;
}

/** What came back: the HTTP status, the RPC code (Connect's string form), and whether a message was streamed. */
export interface ProbeAnswer {
  readonly httpStatus: number;
  /** "ok", or a Connect code name ("invalid_argument"); "http" when only an HTTP status was given. */
  readonly code: string;
  readonly message: string;
  /** A streaming call still open, without error, when the probe stopped reading. */
  readonly open?: boolean;
}

const GRPC_CODES = [
  "ok",
  "canceled",
  "unknown",
  "invalid_argument",
  "deadline_exceeded",
  "not_found",
  "already_exists",
  "permission_denied",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unimplemented",
  "internal",
  "unavailable",
  "data_loss",
  "unauthenticated",
];

/** Splits enveloped bytes; `rest` holds an incomplete tail. */
function envelopes(bytes: Uint8Array): { messages: { flags: number; data: Uint8Array }[]; rest: Uint8Array } {
  const messages: { flags: number; data: Uint8Array }[] = [];
  let offset = 0;
  while (bytes.byteLength - offset >= 5) {
    const length = new DataView(bytes.buffer, bytes.byteOffset + offset).getUint32(1);
    if (bytes.byteLength - offset - 5 < length) break;
    messages.push({ flags: bytes[offset]!, data: bytes.subarray(offset + 5, offset + 5 + length) });
    offset += 5 + length;
  }
  return { messages, rest: bytes.subarray(offset) };
}

const concat = (a: Uint8Array, b: Uint8Array): Uint8Array => {
  const joined = new Uint8Array(a.byteLength + b.byteLength);
  joined.set(a);
  joined.set(b, a.byteLength);
  return joined;
};

/** The answer in the bytes read so far, or undefined when more are needed. */
function interpret(protocol: Protocol, streamingCall: boolean, status: number, headers: Headers, body: Uint8Array, ended: boolean): ProbeAnswer | undefined {
  const grpcStatus = headers.get("grpc-status");
  if (protocol === "gRPC" || protocol === "gRPC-web") {
    if (status !== 200) return { httpStatus: status, code: "http", message: "" };
    if (grpcStatus !== null) return { httpStatus: status, code: GRPC_CODES[Number(grpcStatus)] ?? grpcStatus, message: decodeURIComponent(headers.get("grpc-message") ?? "") };
    const { messages } = envelopes(body);
    if (messages.some((message) => (message.flags & 0x80) === 0)) return { httpStatus: status, code: "ok", message: "" };
    const trailer = messages.find((message) => (message.flags & 0x80) !== 0);
    if (trailer) {
      const fields = new TextDecoder().decode(trailer.data);
      const code = /grpc-status: ?(\d+)/i.exec(fields)?.[1] ?? "0";
      return { httpStatus: status, code: GRPC_CODES[Number(code)] ?? code, message: decodeURIComponent(/grpc-message: ?(.*)/i.exec(fields)?.[1]?.trim() ?? "") };
    }
    return ended ? { httpStatus: status, code: "ok", message: "(no status)" } : undefined;
  }
  if (!streamingCall) {
    if (!ended) return undefined;
    if (status === 200) return { httpStatus: status, code: "ok", message: "" };
    try {
      const error = JSON.parse(new TextDecoder().decode(body)) as { code?: string; message?: string };
      return { httpStatus: status, code: error.code ?? "http", message: error.message ?? "" };
    } catch {
      return { httpStatus: status, code: "http", message: new TextDecoder().decode(body).slice(0, 200) };
    }
  }
  if (status !== 200) return { httpStatus: status, code: "http", message: "" };
  const { messages } = envelopes(body);
  if (messages.some((message) => message.flags === 0)) return { httpStatus: status, code: "ok", message: "" };
  const end = messages.find((message) => (message.flags & 0x02) !== 0);
  if (end) {
    const json = JSON.parse(new TextDecoder().decode(end.data)) as { error?: { code: string; message?: string } };
    return { httpStatus: status, code: json.error?.code ?? "ok", message: json.error?.message ?? "" };
  }
  return ended ? { httpStatus: status, code: "ok", message: "(no end-stream)" } : undefined;
}

export interface Sender {
  send(method: DescMethod, protocol: Protocol, probe: ProbeCase, headers: Record<string, string>): Promise<ProbeAnswer>;
  sendOverHttp1(method: DescMethod, protocol: Protocol, probe: ProbeCase, headers: Record<string, string>): Promise<ProbeAnswer>;
  close(): void;
}

/** How long a unary probe may take to be answered before it counts as unanswered. */
const UNARY_ANSWER_MS = 20_000;

/**
 * Connect and gRPC-web over HTTP/1.1 (fetch), gRPC over one h2c session; a
 * bidi RPC (server reflection) on every protocol over h2c, the only HTTP
 * version that can carry one (connect-node answers it over HTTP/1.1 with
 * 505 HTTP Version Not Supported, which is right, and is checked on its own).
 * A stream that neither streams a message nor ends within `openMs` is
 * reported open and cancelled (a watch with nothing to say yet).
 */
export function createSender(baseUrl: string, openMs: number): Sender {
  // A unary answer is awaited much longer than a stream's first message: `openMs` only
  // tells an idle stream from a refused one, and a busy machine (CI beside other work)
  // answered unary probes after it, which read as aborted calls. So is a stream whose
  // request must be refused: only a tolerated one may stay open with nothing to say
  // (a busy machine once refused a malformed Health Watch after `openMs`, read as open).
  const waitMs = (method: DescMethod, probe: ProbeCase): number => (method.methodKind === "unary" || probe.expect !== "tolerated" ? UNARY_ANSWER_MS : openMs);
  let session: http2.ClientHttp2Session | undefined;
  const h2 = (): http2.ClientHttp2Session => {
    if (!session || session.closed || session.destroyed) session = http2.connect(baseUrl);
    return session;
  };

  const viaFetch = async (method: DescMethod, protocol: Protocol, probe: ProbeCase, headers: Record<string, string>): Promise<ProbeAnswer> => {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), waitMs(method, probe));
    try {
      const response = await fetch(`${baseUrl}/${method.parent.typeName}/${method.name}`, {
        method: "POST",
        headers: { "content-type": probe.contentType, ...(protocol === "gRPC-web" ? { "x-grpc-web": "1" } : {}), ...headers },
        body: probe.body,
        signal: controller.signal,
      });
      let body: Uint8Array = new Uint8Array();
      const reader = response.body?.getReader();
      for (;;) {
        const answer = interpret(protocol, method.methodKind !== "unary", response.status, response.headers, body, false);
        if (answer) return answer;
        const chunk = reader ? await reader.read() : { done: true as const, value: undefined };
        if (chunk.done) return interpret(protocol, method.methodKind !== "unary", response.status, response.headers, body, true)!;
        body = concat(body, chunk.value);
      }
    } catch (error) {
      if (controller.signal.aborted) {
        if (method.methodKind !== "unary" && probe.expect === "tolerated") return { httpStatus: 200, code: "ok", message: "", open: true };
        return { httpStatus: 0, code: "http", message: `no answer within ${UNARY_ANSWER_MS / 1000} s` };
      }
      throw error;
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
  };

  const viaH2 = (method: DescMethod, protocol: Protocol, probe: ProbeCase, headers: Record<string, string>): Promise<ProbeAnswer> =>
    new Promise((resolve, reject) => {
      const stream = h2().request({
        ":method": "POST",
        ":path": `/${method.parent.typeName}/${method.name}`,
        "content-type": probe.contentType,
        ...(protocol === "gRPC" ? { te: "trailers" } : {}),
        ...headers,
      });
      let status = 0;
      const received = new Headers();
      let body: Uint8Array = new Uint8Array();
      let settled = false;
      const settle = (answer: ProbeAnswer): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(answer);
        stream.close(http2.constants.NGHTTP2_CANCEL);
      };
      const timer = setTimeout(
        () =>
          method.methodKind === "unary" || probe.expect !== "tolerated"
            ? settle({ httpStatus: status, code: "http", message: `no answer within ${UNARY_ANSWER_MS / 1000} s` })
            : settle({ httpStatus: status || 200, code: "ok", message: "", open: true }),
        waitMs(method, probe),
      );
      const check = (ended: boolean): void => {
        const answer = interpret(protocol, method.methodKind !== "unary", status, received, body, ended);
        if (answer) settle(answer);
      };
      stream.on("response", (responseHeaders) => {
        status = Number(responseHeaders[":status"]);
        for (const [key, value] of Object.entries(responseHeaders)) if (!key.startsWith(":") && value !== undefined) received.set(key, String(value));
        check(false);
      });
      stream.on("data", (chunk: Buffer) => {
        body = concat(body, chunk);
        check(false);
      });
      stream.on("trailers", (trailers) => {
        for (const [key, value] of Object.entries(trailers)) if (value !== undefined) received.set(key, String(value));
      });
      stream.on("end", () => check(true));
      stream.on("close", () => {
        if (!settled) check(true);
        if (!settled) settle({ httpStatus: status, code: "http", message: `stream closed with code ${stream.rstCode}` });
      });
      stream.on("error", (error) => {
        if (!settled) {
          settled = true;
          clearTimeout(timer);
          reject(error);
        }
      });
      stream.end(probe.body);
    });

  return {
    send: (method, protocol, probe, headers) => (protocol === "gRPC" || method.methodKind === "bidi_streaming" ? viaH2(method, protocol, probe, headers) : viaFetch(method, protocol, probe, headers)),
    sendOverHttp1: (method, protocol, probe, headers) => viaFetch(method, protocol, probe, headers),
    close: () => session?.close(),
  };
}
