import { mkdir } from "node:fs/promises";
import path from "node:path";
import type { PGlite } from "@electric-sql/pglite";
import type { Knex } from "knex";
import type ClientPgLite from "knex-pglite";

/** The embedded PostgreSQL's two packages, loaded only when a service runs without a database URL. */
export interface EmbeddedPostgresModules {
  readonly PGlite: typeof PGlite;
  readonly ClientPgLite: typeof ClientPgLite;
}

const importEmbeddedPostgres = async (): Promise<EmbeddedPostgresModules> => {
  const [pglite, client] = await Promise.all([import("@electric-sql/pglite"), import("knex-pglite")]);
  return { PGlite: pglite.PGlite, ClientPgLite: client.default };
};

/**
 * PGlite and its knex client, imported on first use. They are optional
 * dependencies of the platform: the service images install production
 * dependencies without optional ones (`npm ci --omit=optional`), so the 25 MB
 * of PGlite stay out of every image, and a service started there without its
 * database URL stops with an error naming the setting (`urlSetting`, e.g.
 * CATALOG_DATABASE_URL) rather than a module resolution trace. `load` is for
 * tests.
 */
export async function loadEmbeddedPostgres(urlSetting: string, load: () => Promise<EmbeddedPostgresModules> = importEmbeddedPostgres): Promise<EmbeddedPostgresModules> {
  try {
    return await load();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ERR_MODULE_NOT_FOUND") throw error;
    throw new Error(`${urlSetting} is required: this build carries no embedded PostgreSQL (@electric-sql/pglite, knex-pglite are not installed)`, { cause: error });
  }
}

/**
 * One embedded PostgreSQL (PGlite) per data directory per process, shared by
 * every service of the all-in-one mode, each in a schema of its own.
 *
 * Why shared: a PGlite instance costs about 120 MB resident (its WASM heap,
 * with EMBEDDED_SETTINGS below; 260 MB with PostgreSQL's default buffers),
 * so six of them break the all-in-one memory budget; and two instances must
 * never open one directory. Why a lock: PGlite is a single session, so a
 * service holds it from the moment its knex takes the connection (a query,
 * or a whole transaction) until it gives it back, with its own search_path
 * set on taking it. The registry below is process-wide on purpose: it is the
 * only thing that can stop two instances opening the same directory.
 */
interface EmbeddedServer {
  readonly pglite: PGlite;
  /** Resolves to a release function once the session is free. */
  lock(): Promise<() => void>;
  users: number;
}

const servers = new Map<string, Promise<EmbeddedServer>>();

/**
 * Server settings on top of PGlite's own start parameters. shared_buffers:
 * PostgreSQL's default of 128 MB is allocated and touched inside the WASM
 * heap when the server starts, so it is resident from the first second
 * (about 140 MB of `npm start`'s 440 MB). The embedded databases hold a few
 * MB; PGlite reads its files through the OS page cache anyway, which keeps
 * what 16 MB of buffers do not.
 */
export const EMBEDDED_SETTINGS: readonly string[] = ["-c", "shared_buffers=16MB"];

function createLock(): () => Promise<() => void> {
  // A FIFO of waiters. Hand-written: ten lines, and the only use in the project.
  let tail: Promise<void> = Promise.resolve();
  return () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const turn = tail.then(() => release);
    tail = tail.then(() => held);
    return turn;
  };
}

async function acquireServer(PGlite: EmbeddedPostgresModules["PGlite"], dataDir: string): Promise<EmbeddedServer> {
  const key = path.resolve(dataDir);
  let server = servers.get(key);
  if (!server) {
    server = (async () => {
      await mkdir(key, { recursive: true });
      // A new directory is initialised by this same open: PGlite 0.5 runs
      // initdb in WASM instances of its own and drops them, so this instance's
      // heap ends within ~10 MB of a later open of the initialised directory.
      // (Before 0.5 initdb grew it to twice that, and it was closed and opened
      // again: ~0.4 s of CPU on a first start that no longer buys anything.)
      const pglite = new PGlite(key, { startParams: [...PGlite.defaultStartParams, ...EMBEDDED_SETTINGS] });
      await pglite.waitReady;
      return { pglite, lock: createLock(), users: 0 };
    })();
    servers.set(key, server);
    server.catch(() => servers.delete(key));
  }
  const ready = await server;
  ready.users++;
  return ready;
}

async function releaseServer(dataDir: string, server: EmbeddedServer): Promise<void> {
  server.users--;
  if (server.users > 0) return;
  servers.delete(path.resolve(dataDir));
  await server.pglite.close();
}

const quoteIdentifier = (name: string): string => {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`schema name ${name} must be lower-case letters, digits and _`);
  return `"${name}"`;
};

/** knex config for `schema` in the shared embedded server at `dataDir`, and how to let go of it. */
export async function sharedPgliteConfig(modules: EmbeddedPostgresModules, dataDir: string, schema: string): Promise<{ config: Knex.Config; release: () => Promise<void> }> {
  const server = await acquireServer(modules.PGlite, dataDir);
  const quoted = quoteIdentifier(schema);
  await withSession(server, (pglite) => pglite.query(`create schema if not exists ${quoted}`));
  const Base = modules.ClientPgLite as unknown as new (
    config: Knex.Config,
  ) => {
    acquireConnection(): Promise<PGlite>;
    releaseConnection(connection: PGlite): Promise<unknown>;
  };
  let releaseSession: (() => void) | undefined;
  class SharedClient extends Base {
    override async acquireConnection(): Promise<PGlite> {
      const release = await server.lock();
      try {
        const connection = await super.acquireConnection();
        await connection.query(`set search_path to ${quoted}`);
        releaseSession = release;
        return connection;
      } catch (error) {
        release();
        throw error;
      }
    }
    override async releaseConnection(connection: PGlite): Promise<unknown> {
      try {
        return await super.releaseConnection(connection);
      } finally {
        const release = releaseSession;
        releaseSession = undefined;
        release?.();
      }
    }
    // The session belongs to the registry, not to this knex: closing a service must not close it.
    async destroyRawConnection(): Promise<void> {}
  }
  return {
    config: { client: SharedClient as unknown as typeof Knex.Client, dialect: "postgres", connection: { pglite: server.pglite } } as Knex.Config,
    release: () => releaseServer(dataDir, server),
  };
}

async function withSession<T>(server: EmbeddedServer, work: (pglite: PGlite) => Promise<T>): Promise<T> {
  const release = await server.lock();
  try {
    return await work(server.pglite);
  } finally {
    release();
  }
}
