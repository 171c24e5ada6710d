/**
 * A small OTLP/HTTP trace receiver: accepts what the real OTLP exporter of
 * each service sends (POST /v1/traces, protobuf, the services' default, or
 * JSON), and keeps every span with the service.name of its resource. It
 * stands where Jaeger or a collector would; the exporters, their batching
 * and the wire format are the production ones.
 * Hand-written because no npm package offers an embeddable receiver, and no
 * Jaeger or collector can be installed where the offline compose run goes;
 * its job (parse, keep, answer) is small. The protobuf reader below is
 * hand-written for the same reason the file imports only node: modules: the
 * container runs it with Node's type stripping and no node_modules, and it
 * reads just the few fields kept here, skipping the rest by wire type.
 *
 * Two uses: tests start it in-process (startOtlpReceiver), and the offline
 * compose run starts it as a container in Jaeger's place
 * (`node otlp-receiver.ts`, Node's type stripping: this file uses only
 * erasable TypeScript and node: modules), where a test asks it for spans:
 *   GET /api/spans?trace_id=HEX&service=NAME   the spans kept, as JSON
 *   GET /health                                200 once listening
 * It keeps the newest OTLP_RECEIVER_MAX_SPANS spans (default 200,000).
 */
import { EventEmitter } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceivedSpan {
  readonly service: string;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly name: string;
  /** OTLP span kind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  readonly kind: number;
  readonly attributes: Readonly<Record<string, unknown>>;
}

export interface OtlpReceiverOptions {
  readonly host?: string;
  /** 0 (the default) picks a free port. */
  readonly port?: number;
  /** The oldest spans are dropped beyond this many. */
  readonly maxSpans?: number;
}

export interface OtlpReceiver {
  readonly endpoint: string;
  readonly spans: ReceivedSpan[];
  /** Resolves once `done(spans)` holds, or rejects after `timeoutMs` naming what arrived. */
  until(done: (spans: readonly ReceivedSpan[]) => boolean, timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
  doubleValue?: number;
}
interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}
interface OtlpRequest {
  resourceSpans?: {
    resource?: { attributes?: OtlpAttribute[] };
    scopeSpans?: { spans?: { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes?: OtlpAttribute[] }[] }[];
  }[];
}

/** OTLP/JSON ids are hex; accept base64 too (the protobuf-JSON mapping of bytes). */
function hexId(value: string | undefined): string {
  if (!value) return "";
  if (/^[0-9a-f]+$/i.test(value) && (value.length === 32 || value.length === 16)) return value.toLowerCase();
  return Buffer.from(value, "base64").toString("hex");
}

const plain = (value: OtlpValue): unknown => value.stringValue ?? value.intValue ?? value.boolValue ?? value.doubleValue;
const attributesOf = (list: OtlpAttribute[] | undefined): Record<string, unknown> => Object.fromEntries((list ?? []).map((entry) => [entry.key, plain(entry.value)]));

function parseRequest(text: string): ReceivedSpan[] {
  const body = JSON.parse(text) as OtlpRequest;
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new Error("not an OTLP ExportTraceServiceRequest object");
  const received: ReceivedSpan[] = [];
  for (const resourceSpans of body.resourceSpans ?? []) {
    const service = String(attributesOf(resourceSpans.resource?.attributes)["service.name"] ?? "");
    for (const scope of resourceSpans.scopeSpans ?? []) {
      for (const span of scope.spans ?? []) {
        received.push({
          service,
          traceId: hexId(span.traceId),
          spanId: hexId(span.spanId),
          parentSpanId: hexId(span.parentSpanId),
          name: span.name,
          kind: span.kind,
          attributes: attributesOf(span.attributes),
        });
      }
    }
  }
  return received;
}

// ---------------------------------------------------------------------------
// OTLP protobuf (opentelemetry/proto/collector/trace/v1 ExportTraceServiceRequest)

/** A length-delimited field's bytes, or a varint / fixed value, by field number. */
type Field = { readonly number: number; readonly bytes?: Uint8Array; readonly value?: bigint | number };

/** The fields of one message, in order; unknown wire types are refused. */
function fieldsOf(buffer: Uint8Array): Field[] {
  const fields: Field[] = [];
  let at = 0;
  const varint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (at >= buffer.length) throw new Error("a varint runs past the end of the message");
      const byte = buffer[at++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return result;
      if (shift > 63n) throw new Error("a varint is longer than 10 bytes");
    }
  };
  const take = (length: number): Uint8Array => {
    if (at + length > buffer.length) throw new Error("a field runs past the end of the message");
    const bytes = buffer.subarray(at, at + length);
    at += length;
    return bytes;
  };
  while (at < buffer.length) {
    const key = Number(varint());
    const number = key >>> 3;
    switch (key & 7) {
      case 0:
        fields.push({ number, value: varint() });
        break;
      case 1: {
        const bytes = take(8);
        fields.push({ number, value: new DataView(bytes.buffer, bytes.byteOffset, 8).getFloat64(0, true) });
        break;
      }
      case 2:
        fields.push({ number, bytes: take(Number(varint())) });
        break;
      case 5:
        take(4);
        break;
      default:
        throw new Error(`wire type ${key & 7} of field ${number} is not one protobuf uses`);
    }
  }
  return fields;
}

const text = (bytes: Uint8Array | undefined): string => (bytes ? Buffer.from(bytes).toString("utf8") : "");
const hex = (bytes: Uint8Array | undefined): string => (bytes ? Buffer.from(bytes).toString("hex") : "");
const messages = (fields: Field[], number: number): Field[][] => fields.filter((field) => field.number === number && field.bytes).map((field) => fieldsOf(field.bytes!));
const first = (fields: Field[], number: number): Field | undefined => fields.find((field) => field.number === number);

/** AnyValue: string 1, bool 2, int 3, double 4 (arrays, maps and bytes are not kept). */
function anyValue(fields: Field[]): unknown {
  const field = fields[0];
  if (!field) return undefined;
  if (field.number === 1) return text(field.bytes);
  if (field.number === 2) return field.value === 1n;
  if (field.number === 3) {
    // As the SDK's OTLP/JSON writes it: a number, or a string beyond what a double holds exactly.
    const int = BigInt.asIntN(64, field.value as bigint);
    return int >= BigInt(Number.MIN_SAFE_INTEGER) && int <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(int) : String(int);
  }
  if (field.number === 4) return field.value;
  return undefined;
}

/** KeyValue list (key 1, value 2) as a record. */
const protoAttributes = (list: Field[][]): Record<string, unknown> =>
  Object.fromEntries(list.map((pair) => [text(first(pair, 1)?.bytes), anyValue(fieldsOf(first(pair, 2)?.bytes ?? new Uint8Array()))]));

function parseProtobufRequest(body: Uint8Array): ReceivedSpan[] {
  const received: ReceivedSpan[] = [];
  // ExportTraceServiceRequest.resource_spans 1 > ResourceSpans.resource 1 (Resource.attributes 1), scope_spans 2 > ScopeSpans.spans 2.
  for (const resourceSpans of messages(fieldsOf(body), 1)) {
    const resource = messages(resourceSpans, 1)[0] ?? [];
    const service = String(protoAttributes(messages(resource, 1))["service.name"] ?? "");
    for (const scope of messages(resourceSpans, 2)) {
      // Span: trace_id 1, span_id 2, parent_span_id 4, name 5, kind 6, attributes 9.
      for (const span of messages(scope, 2)) {
        received.push({
          service,
          traceId: hex(first(span, 1)?.bytes),
          spanId: hex(first(span, 2)?.bytes),
          parentSpanId: hex(first(span, 4)?.bytes),
          name: text(first(span, 5)?.bytes),
          kind: Number(first(span, 6)?.value ?? 0),
          attributes: protoAttributes(messages(span, 9)),
        });
      }
    }
  }
  return received;
}

function reply(response: http.ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

export async function startOtlpReceiver(options: OtlpReceiverOptions = {}): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const maxSpans = options.maxSpans ?? 200_000;
  const arrived = new EventEmitter();
  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://receiver");
    if (request.method === "GET" && url.pathname === "/health") {
      reply(response, 200, { status: "ok", spans: spans.length });
      return;
    }
    if (request.method === "GET" && url.pathname === "/api/spans") {
      const traceId = url.searchParams.get("trace_id");
      const service = url.searchParams.get("service");
      reply(
        response,
        200,
        spans.filter((span) => (traceId === null || span.traceId === traceId.toLowerCase()) && (service === null || span.service === service)),
      );
      return;
    }
    if (request.method !== "POST" || url.pathname !== "/v1/traces") {
      reply(response, 404, { error: `no such endpoint: ${request.method} ${url.pathname}` });
      request.resume();
      return;
    }
    const contentType = String(request.headers["content-type"]);
    const protobuf = contentType.startsWith("application/x-protobuf");
    if (!protobuf && !contentType.startsWith("application/json")) {
      response.writeHead(415, { "content-type": "text/plain" }).end("this receiver takes OTLP/HTTP as protobuf (application/x-protobuf) or JSON (application/json)");
      request.resume();
      return;
    }
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      let received: ReceivedSpan[];
      try {
        const body = Buffer.concat(chunks);
        received = protobuf ? parseProtobufRequest(body) : parseRequest(body.toString("utf8"));
      } catch (error) {
        reply(response, 400, { error: `malformed OTLP/${protobuf ? "protobuf" : "JSON"} body: ${error instanceof Error ? error.message : String(error)}` });
        return;
      }
      spans.push(...received);
      if (spans.length > maxSpans) spans.splice(0, spans.length - maxSpans);
      reply(response, 200, {});
      arrived.emit("spans");
    });
  });
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    spans,
    until(done, timeoutMs) {
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (!done(spans)) return;
          clearTimeout(timer);
          arrived.off("spans", check);
          resolve();
        };
        const timer = setTimeout(() => {
          arrived.off("spans", check);
          reject(new Error(`the expected spans did not arrive within ${timeoutMs} ms; got: ${spans.map((span) => `${span.service}:${span.name}`).join(", ")}`));
        }, timeoutMs);
        arrived.on("spans", check);
        check();
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

// Run as a program (the compose stand-in for Jaeger): listen until SIGTERM.
if (process.argv[1] !== undefined && import.meta.url === `file://${process.argv[1]}`) {
  const receiver = await startOtlpReceiver({
    host: process.env.OTLP_RECEIVER_HOST ?? "0.0.0.0",
    port: Number(process.env.OTLP_RECEIVER_PORT ?? 4318),
    maxSpans: Number(process.env.OTLP_RECEIVER_MAX_SPANS ?? 200_000),
  });
  process.stdout.write(`otlp-receiver: listening on ${receiver.endpoint} (POST /v1/traces, GET /api/spans)\n`);
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => {
      void receiver.close().then(() => process.exit(0));
    });
  }
}
