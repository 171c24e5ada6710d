/**
 * A container health probe over grpc.health.v1: exits 0 only when the
 * server answers SERVING, 1 otherwise (NOT_SERVING, unknown, unreachable, or
 * no answer within the deadline), printing why.
 *
 *   health-probe.ts HOST:PORT [SERVICE]   probe an address ("" = the whole server)
 *   health-probe.ts --service NAME        probe 127.0.0.1 on NAME's configured port
 *                                         (NAME_PORT, else the default in its config spec)
 *   health-probe.ts                       the same for $MESHWORK_SERVICE (what the image sets)
 *
 * It speaks gRPC over node:http2 with the generated health contract, and
 * loads nothing else: Docker starts it every few seconds in every container,
 * so it must start fast (see checkHealth). Works for the gateway too, which serves
 * grpc.health.v1 through Connect on its edge port.
 */
import { connect } from "node:http2";
import path from "node:path";
import { pathToFileURL } from "node:url";

const TIMEOUT_MS = Number(process.env.MESHWORK_HEALTH_PROBE_TIMEOUT_MS ?? 3000);
/**
 * How long the probe keeps asking a server that is not SERVING yet (or not
 * listening yet) before it fails; 0 asks once. The images set it: Docker 20.10
 * probes a starting container only every `interval`, so a service that serves
 * just after a probe would wait a whole interval to turn healthy; a probe that
 * waits a little sees it serve.
 */
const WAIT_MS = Number(process.env.MESHWORK_HEALTH_PROBE_WAIT_MS ?? 0);
const root = path.resolve(import.meta.dirname, "..");

/**
 * Every service's default port, written into the compiled probe by
 * scripts/build-service.ts (an image has no config modules to load); absent
 * when the probe runs from its TypeScript source.
 */
declare const MESHWORK_DEFAULT_PORTS: Readonly<Record<string, number>> | undefined;
const builtInPorts: Readonly<Record<string, number>> | undefined = typeof MESHWORK_DEFAULT_PORTS === "undefined" ? undefined : MESHWORK_DEFAULT_PORTS;

interface PortSetting {
  readonly env: string;
  readonly default: number;
}

/** The port setting of NAME's config spec (loads the service's config module and the platform: slow). */
export async function portSetting(service: string): Promise<PortSetting> {
  const file = path.join(root, "services", service, "src", "config.ts");
  const module = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  const spec = Object.entries(module).find(([name]) => name.endsWith("ConfigSpec"))?.[1] as { port?: PortSetting } | undefined;
  if (!spec?.port) throw new Error(`${file} exports no config spec with a port setting`);
  return spec.port;
}

/**
 * NAME's gRPC port as the service itself reads it: <NAME>_PORT (every
 * service's port variable, see serviceSettings), else its config default.
 * The variable is read first so that a probe in a container that sets it
 * (compose and Kubernetes do) does not load the whole platform each time.
 */
async function configuredPort(service: string, env: NodeJS.ProcessEnv): Promise<number> {
  if (!/^[a-z]+$/.test(service)) throw new Error(`--service: "${service}" is not a service name such as catalog`);
  const variable = `${service.toUpperCase()}_PORT`;
  const text = env[variable];
  if (text === undefined || text === "") return builtInPorts?.[service] ?? (await portSetting(service)).default;
  const port = Number(text);
  if (!/^\d+$/.test(text) || port <= 0 || port > 65535) throw new Error(`${variable}: "${text}" is not a port`);
  return port;
}

export async function probeTarget(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<{ address: string; service: string }> {
  if (argv[0] === "--service") {
    if (!argv[1]) throw new Error("--service needs a service name");
    return { address: `127.0.0.1:${await configuredPort(argv[1], env)}`, service: "" };
  }
  if (argv[0] !== undefined) {
    if (!/^[^\s:]+:\d+$/.test(argv[0]) && !/^\[[^\]]+\]:\d+$/.test(argv[0])) throw new Error(`"${argv[0]}" is not HOST:PORT`);
    return { address: argv[0], service: argv[1] ?? "" };
  }
  const service = env.MESHWORK_SERVICE;
  if (!service) throw new Error("give HOST:PORT, --service NAME, or set MESHWORK_SERVICE");
  return { address: `127.0.0.1:${await configuredPort(service, env)}`, service: "" };
}

/** grpc.health.v1 ServingStatus, by number (proto/grpc/health/v1/health.proto). */
export const SERVING_STATUS: Readonly<Record<number, string>> = { 0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN" };
const SERVING = 1;

function varint(value: number): number[] {
  const bytes: number[] = [];
  let rest = value;
  while (rest > 0x7f) {
    bytes.push((rest & 0x7f) | 0x80);
    rest >>>= 7;
  }
  bytes.push(rest);
  return bytes;
}

/** HealthCheckRequest { string service = 1; } in protobuf's wire format (empty for ""). */
export function encodeRequest(service: string): Buffer {
  if (service === "") return Buffer.alloc(0);
  const text = Buffer.from(service, "utf8");
  return Buffer.concat([Buffer.from([0x0a, ...varint(text.length)]), text]);
}

/** The status of a HealthCheckResponse { ServingStatus status = 1; }; other fields are skipped, as protobuf readers do. */
export function decodeStatus(bytes: Uint8Array): number | { error: string } {
  let offset = 0;
  let status = 0; // absent: the default, UNKNOWN
  const readVarint = (): number => {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (offset >= bytes.length) throw new Error("truncated varint");
      const byte = bytes[offset++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
    }
    throw new Error("varint too long");
  };
  try {
    while (offset < bytes.length) {
      const key = readVarint();
      const field = Math.floor(key / 8);
      const wireType = key & 7;
      if (wireType === 0) {
        const value = readVarint();
        if (field === 1) status = value;
      } else if (wireType === 2) {
        const length = readVarint(); // read first: `offset += readVarint()` would add to the offset before the length
        offset += length;
      } else if (wireType === 1) offset += 8;
      else if (wireType === 5) offset += 4;
      else throw new Error(`wire type ${wireType}`);
    }
    if (offset > bytes.length) throw new Error("truncated field");
  } catch (error) {
    return { error: `a malformed health answer (${error instanceof Error ? error.message : String(error)})` };
  }
  return status;
}

/**
 * The serving status the server reports for `service`, or an error saying why
 * there is none: one grpc.health.v1 Check over Node's own HTTP/2 client.
 *
 * Written by hand rather than with grpc-js and the generated contract, because
 * Docker runs this probe in every container every few seconds: with them a
 * probe cost 0.42 s of CPU (0.30 s with @bufbuild/protobuf alone), against
 * 0.12 s for Node's start, so seven containers probed every 5 s kept more
 * than half a core busy. The protocol part is small: one length-prefixed
 * message each way, the status in the trailers (or in the headers of a
 * trailers-only answer), and two one-field messages (encodeRequest,
 * decodeStatus). A test checks it against grpc-js servers and the gateway's
 * Connect server alike.
 */
export function checkHealth(address: string, service: string, timeoutMs: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const session = connect(`http://${address}`);
    let settled = false;
    const finish = (outcome: { status: number } | { error: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      if ("error" in outcome) reject(new Error(`${address}: ${outcome.error}`));
      else resolve(outcome.status);
    };
    const timer = setTimeout(() => finish({ error: `no answer within ${timeoutMs} ms` }), timeoutMs);
    session.on("error", (error) => finish({ error: error.message }));
    const message = encodeRequest(service);
    const frame = Buffer.alloc(5 + message.length);
    frame.writeUInt32BE(message.length, 1);
    frame.set(message, 5);
    const stream = session.request({
      ":method": "POST",
      ":path": "/grpc.health.v1.Health/Check",
      "content-type": "application/grpc",
      te: "trailers",
      "grpc-timeout": `${timeoutMs}m`,
    });
    const chunks: Buffer[] = [];
    let grpcStatus: string | undefined;
    let grpcMessage = "";
    const readStatus = (headers: Record<string, unknown>) => {
      if (headers["grpc-status"] !== undefined) {
        grpcStatus = String(headers["grpc-status"]);
        grpcMessage = decodeURIComponent(String(headers["grpc-message"] ?? ""));
      }
    };
    stream.on("response", (headers) => {
      if (headers[":status"] !== 200) finish({ error: `HTTP ${String(headers[":status"])} instead of a gRPC answer` });
      else readStatus(headers);
    });
    stream.on("trailers", readStatus);
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", (error) => finish({ error: error.message }));
    stream.on("end", () => {
      if (grpcStatus === undefined) return finish({ error: "the answer carried no grpc-status" });
      if (grpcStatus !== "0") return finish({ error: `grpc-status ${grpcStatus}${grpcMessage ? ` (${grpcMessage})` : ""}` });
      const body = Buffer.concat(chunks);
      const length = body.length >= 5 ? body.readUInt32BE(1) : -1;
      if (length < 0 || body.length < 5 + length || body[0] !== 0) return finish({ error: "a malformed or compressed health answer" });
      const status = decodeStatus(body.subarray(5, 5 + length));
      finish(typeof status === "number" ? { status } : { error: status.error });
    });
    stream.end(frame);
  });
}

/**
 * Asks until SERVING or until `waitMs` has passed (every 200 ms), then reports
 * the last answer or error. Each attempt's deadline ends at most a second after
 * the wait, so the whole probe stays within waitMs + 1 s (+ one timeout if shorter).
 */
async function checkHealthWaiting(address: string, service: string, timeoutMs: number, waitMs: number): Promise<number> {
  const until = Date.now() + waitMs;
  for (;;) {
    const attemptTimeout = Math.max(500, Math.min(timeoutMs, until + 1000 - Date.now()));
    try {
      const status = await checkHealth(address, service, attemptTimeout);
      if (status === SERVING || Date.now() >= until) return status;
    } catch (error) {
      if (Date.now() >= until) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function main(): Promise<number> {
  const { address, service } = await probeTarget(process.argv.slice(2), process.env);
  const status = await checkHealthWaiting(address, service, TIMEOUT_MS, WAIT_MS);
  const name = SERVING_STATUS[status] ?? String(status);
  process.stdout.write(`${address}${service ? ` ${service}` : ""}: ${name}\n`);
  return status === SERVING ? 0 : 1;
}

if (import.meta.filename === process.argv[1]) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`health probe failed: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
