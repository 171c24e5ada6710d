/**
 * The local mesh: every service in its own process (two notifications
 * instances competing for one queue), each on its own PostgreSQL database
 * and role, events over RabbitMQ, Consul for discovery and live config when
 * CONSUL_HTTP_ADDR is set (static addresses otherwise). Used by `npm run mesh`
 * and by the multi-process end-to-end test, which names its own databases,
 * ports, exchange and queue so it never meets a running mesh.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { createInterface } from "node:readline";
import { DEV_EDGE_EXPOSURE } from "./dev-edge.js";
import { dropServiceDatabase, ensureServiceDatabase, type ServiceDatabase } from "./service-databases.js";

const root = path.resolve(import.meta.dirname, "..", "..");
const host = "127.0.0.1";

export interface MeshOptions {
  readonly adminUrl: string;
  readonly amqpUrl: string;
  /** Suffix of the databases and roles ("" for the real ones). */
  readonly databaseSuffix?: string;
  /** Ports: gateway = base, services base+1..; default 8080 and the services' own defaults. */
  readonly basePort?: number;
  readonly exchange?: string;
  readonly queue?: string;
  /** Extra environment for every instance (keep log levels at info or below: start-up waits for each "serving" line). */
  readonly env?: Record<string, string>;
  /** Where each log line goes (prefixed with the instance name). */
  readonly output?: (line: string) => void;
  /** Catalog instances, 1 (default) or 2; the second serves on the first's port + 10 (base + 7). */
  readonly catalogInstances?: 1 | 2;
  /** A service's database URL instead of one created on adminUrl (e.g. orders on a PostgreSQL a test restarts). */
  readonly databaseUrls?: Partial<Record<"identity" | "catalog" | "payments" | "orders" | "notifications", string>>;
}

export interface RunningMesh {
  readonly gatewayPort: number;
  readonly instances: readonly string[];
  /** host:port of each instance's gRPC server, by instance name. */
  readonly addresses: Readonly<Record<string, string>>;
  /** Sends `signal` to one instance and waits for it to exit. */
  kill(name: string, signal: NodeJS.Signals): Promise<void>;
  /** SIGTERM to every instance, then waits for them to exit. */
  stop(): Promise<void>;
  /** Drops databases and roles created with a suffix (tests). */
  dropDatabases(): Promise<void>;
}

interface Instance {
  readonly name: string;
  readonly service: string;
  readonly env: Record<string, string>;
}

export async function startMesh(options: MeshOptions): Promise<RunningMesh> {
  const suffix = options.databaseSuffix ?? "";
  const created: ServiceDatabase[] = [];
  const url = async (service: string): Promise<string> => {
    const given = options.databaseUrls?.[service as keyof NonNullable<MeshOptions["databaseUrls"]>];
    if (given !== undefined) return given;
    const database = await ensureServiceDatabase(options.adminUrl, service, suffix);
    created.push(database);
    return database.url;
  };
  const base = options.basePort;
  const port = (defaultPort: number, offset: number): number => (base === undefined ? defaultPort : base + offset);
  const ports = {
    gateway: port(8080, 0),
    identity: port(50051, 1),
    catalog: options.catalogInstances === 2 ? [port(50052, 2), port(50062, 7)] : [port(50052, 2)],
    orders: port(50053, 3),
    payments: port(50054, 4),
    notifications: [port(50055, 5), port(50065, 6)] as const,
  };
  // /metrics ports: 9464 + offset, a second instance 10 above its first
  // (notifications 9479, catalog 9476, as their gRPC ports 50065 and 50062); with a base port (tests), any
  // free one, so a test never meets a running mesh.
  const metrics = (defaultPort: number): string => (base === undefined ? String(defaultPort) : "0");
  const addr = (value: number): string => `${host}:${value}`;
  const notificationsAddrs = ports.notifications.map(addr).join(",");
  const catalogAddrs = ports.catalog.map(addr).join(",");
  const catalogDb = await url("catalog");
  const events = options.exchange ? { ORDERS_EVENTS_EXCHANGE: options.exchange } : {};
  const notificationsDb = await url("notifications");
  const instances: Instance[] = [
    { name: "identity", service: "identity", env: { IDENTITY_PORT: String(ports.identity), IDENTITY_METRICS_PORT: metrics(9465), IDENTITY_DATABASE_URL: await url("identity") } },
    ...ports.catalog.map((catalogPort, index) => ({
      name: index === 0 ? "catalog" : `catalog-${index + 1}`,
      service: "catalog",
      // Instances of one service share its database.
      env: { CATALOG_PORT: String(catalogPort), CATALOG_METRICS_PORT: metrics(9466 + 10 * index), CATALOG_DATABASE_URL: catalogDb },
    })),
    { name: "payments", service: "payments", env: { PAYMENTS_PORT: String(ports.payments), PAYMENTS_METRICS_PORT: metrics(9468), PAYMENTS_DATABASE_URL: await url("payments") } },
    {
      name: "orders",
      service: "orders",
      env: {
        ORDERS_PORT: String(ports.orders),
        ORDERS_METRICS_PORT: metrics(9467),
        ORDERS_DATABASE_URL: await url("orders"),
        ORDERS_AMQP_URL: options.amqpUrl,
        ORDERS_CATALOG_ADDR: catalogAddrs,
        ORDERS_PAYMENTS_ADDR: addr(ports.payments),
        ORDERS_IDENTITY_ADDR: addr(ports.identity),
        ...events,
      },
    },
    ...ports.notifications.map((notificationsPort, index) => ({
      name: `notifications-${index + 1}`,
      service: "notifications",
      env: {
        NOTIFICATIONS_PORT: String(notificationsPort),
        NOTIFICATIONS_METRICS_PORT: metrics(9469 + 10 * index),
        // One service, one database: both instances share it (and its inbox).
        NOTIFICATIONS_DATABASE_URL: notificationsDb,
        NOTIFICATIONS_AMQP_URL: options.amqpUrl,
        NOTIFICATIONS_IDENTITY_ADDR: addr(ports.identity),
        ...(options.exchange ? { NOTIFICATIONS_EVENTS_EXCHANGE: options.exchange } : {}),
        ...(options.queue ? { NOTIFICATIONS_QUEUE: options.queue } : {}),
      },
    })),
    {
      name: "gateway",
      service: "gateway",
      env: {
        GATEWAY_PORT: String(ports.gateway),
        GATEWAY_METRICS_PORT: metrics(9464),
        GATEWAY_IDENTITY_ADDR: addr(ports.identity),
        GATEWAY_CATALOG_ADDR: catalogAddrs,
        GATEWAY_ORDERS_ADDR: addr(ports.orders),
        GATEWAY_PAYMENTS_ADDR: addr(ports.payments),
        GATEWAY_NOTIFICATIONS_ADDR: notificationsAddrs,
      },
    },
  ];

  const output = options.output ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const children = new Map<string, ChildProcess>();
  const start = (instance: Instance): Promise<void> => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(root, "services", instance.service, "src", "main.ts")], {
      cwd: root,
      // Each process names its own spans (one OTEL_SERVICE_NAME would merge the seven).
      env: { ...(instance.service === "gateway" ? DEV_EDGE_EXPOSURE : {}), ...withoutServiceName(process.env), ...options.env, ...instance.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.set(instance.name, child);
    const prefix = `${instance.name.padEnd(15)} | `;
    return new Promise<void>((resolve, reject) => {
      child.once("exit", (code, signal) => {
        children.delete(instance.name);
        output(`${prefix}exited (${signal ?? code})`);
        reject(new Error(`${instance.name} exited (${signal ?? code}) before serving`));
      });
      for (const stream of [child.stdout, child.stderr]) {
        createInterface({ input: stream }).on("line", (line) => {
          output(`${prefix}${line}`);
          if (/"msg":"[a-z]+ serving"/.test(line)) resolve();
        });
      }
    });
  };

  const stop = async (): Promise<void> => {
    const exits = [...children.values()].map((child) => once(child, "exit").catch(() => undefined));
    for (const child of children.values()) child.kill("SIGTERM");
    await Promise.all(exits);
  };
  try {
    // Callees first, so callers find them; the gateway last.
    const waves = [["identity", "catalog", "catalog-2", "payments"], ["orders", "notifications-1", "notifications-2"], ["gateway"]];
    for (const wave of waves) await Promise.all(instances.filter((instance) => wave.includes(instance.name)).map(start));
  } catch (error) {
    await stop();
    throw error;
  }
  const portOf = (instance: Instance): string => Object.entries(instance.env).find(([key]) => key.endsWith("_PORT"))![1];
  return {
    gatewayPort: ports.gateway,
    instances: instances.map((instance) => instance.name),
    addresses: Object.fromEntries(instances.map((instance) => [instance.name, addr(Number(portOf(instance)))])),
    async kill(name, signal) {
      const child = children.get(name);
      if (!child) throw new Error(`no running instance named ${name}`);
      const exited = once(child, "exit").catch(() => undefined);
      child.kill(signal);
      await exited;
    },
    stop,
    async dropDatabases() {
      if (suffix === "") return;
      for (const database of new Map(created.map((entry) => [entry.database, entry])).values()) await dropServiceDatabase(options.adminUrl, database);
    },
  };
}

function withoutServiceName(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { OTEL_SERVICE_NAME: _shared, ...rest } = env;
  return rest;
}
