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
 * It speaks gRPC with @grpc/grpc-js and the generated health contract, and
 * loads nothing else: Docker starts it every few seconds in every container,
 * so it must start fast. Works for the gateway too, which serves
 * grpc.health.v1 through Connect on its edge port.
 */
import { Client, credentials, type ServiceError } from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { HealthCheckRequestSchema, HealthCheckResponse_ServingStatus, HealthCheckResponseSchema } from "@meshwork/contracts/health/v1/health";
import path from "node:path";
import { pathToFileURL } from "node:url";

const TIMEOUT_MS = Number(process.env.MESHWORK_HEALTH_PROBE_TIMEOUT_MS ?? 3000);
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

/** The serving status the server reports for `service`, or an error saying why there is none. */
export function checkHealth(address: string, service: string, timeoutMs: number): Promise<HealthCheckResponse_ServingStatus> {
  const client = new Client(address, credentials.createInsecure());
  return new Promise<HealthCheckResponse_ServingStatus>((resolve, reject) => {
    client.makeUnaryRequest(
      "/grpc.health.v1.Health/Check",
      (request: Uint8Array) => Buffer.from(request),
      (bytes: Buffer) => fromBinary(HealthCheckResponseSchema, bytes),
      toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service })),
      { deadline: Date.now() + timeoutMs },
      (error: ServiceError | null, response) => {
        if (error) reject(new Error(`${address}: ${error.details || error.message}`));
        else resolve(response!.status);
      },
    );
  }).finally(() => client.close());
}

async function main(): Promise<number> {
  const { address, service } = await probeTarget(process.argv.slice(2), process.env);
  const status = await checkHealth(address, service, TIMEOUT_MS);
  const name = HealthCheckResponse_ServingStatus[status] ?? String(status);
  process.stdout.write(`${address}${service ? ` ${service}` : ""}: ${name}\n`);
  return status === HealthCheckResponse_ServingStatus.SERVING ? 0 : 1;
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
