import knexFactory, { type Knex } from "knex";
import pg from "pg";
import { loadEmbeddedPostgres, sharedPgliteConfig } from "./embedded-postgres.js";
import type { Logger } from "./logger.js";

export type { Knex } from "knex";

/** One migration of a service's schema. */
export interface Migration {
  /** Sorts the migrations: "0001_products". */
  readonly name: string;
  up(db: Knex): Promise<void>;
  down(db: Knex): Promise<void>;
}

export interface DatabaseOptions {
  /** PostgreSQL URL; when absent, an embedded PGlite database is used instead. */
  readonly url?: string | undefined;
  /**
   * The setting `url` comes from (e.g. CATALOG_DATABASE_URL), named in the
   * error when there is no URL and no embedded PostgreSQL installed either.
   */
  readonly urlSetting?: string;
  /**
   * PGlite data directory, or "memory://" for a throw-away database. Used only
   * without `url`. Services of one process that name the same directory share
   * one embedded server, each in its own `schema`.
   */
  readonly dataDir?: string;
  /** Schema of this service in a shared embedded server (default "public"). */
  readonly schema?: string;
  /** Migrations of this service's schema, applied by migrate(). */
  readonly migrations: readonly Migration[];
  /** Name of this service's migrations table, e.g. "catalog_migrations". */
  readonly migrationsTable: string;
  readonly log: Logger;
  /** Connection pool size (PostgreSQL only; PGlite has one connection). */
  readonly poolMax?: number;
}

export interface Database {
  readonly knex: Knex;
  readonly kind: "postgres" | "pglite";
  /** Applies pending migrations; returns their names. */
  migrate(): Promise<string[]>;
  close(): Promise<void>;
}

// pg hands back int8 (count(*), bigint columns) as strings, PGlite as
// numbers. Services must not see the difference, so pg is told to parse them
// too, per connection (not through pg's process-wide type table). numeric
// stays a string on both engines, so no precision is lost (sum(bigint) is
// numeric: cast it back to bigint in SQL when a number is wanted).
const INT8 = 20;
const pgTypes = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    if (oid === INT8) {
      return (value: string) => {
        const parsed = Number(value);
        if (!Number.isSafeInteger(parsed)) throw new RangeError(`int8 value ${value} does not fit a JavaScript number`);
        return parsed;
      };
    }
    return pg.types.getTypeParser(oid, format as "text");
  },
};

/**
 * Two instances starting on an empty database would both create the
 * migrations table and one would fail; knex's own migration lock lives in a
 * table that does not exist yet. A session advisory lock, keyed by the
 * migrations table's name, makes them take turns.
 */
async function withMigrationLock<T>(knex: Knex, table: string, work: () => Promise<T>): Promise<T> {
  const key = [...table].reduce((hash, char) => (Math.imul(hash, 31) + char.charCodeAt(0)) | 0, 7);
  const connection = await knex.client.acquireConnection();
  try {
    await knex.raw("select pg_advisory_lock(?)", [key]).connection(connection);
    try {
      return await work();
    } finally {
      await knex.raw("select pg_advisory_unlock(?)", [key]).connection(connection);
    }
  } finally {
    await knex.client.releaseConnection(connection);
  }
}

/**
 * True when the migrations table lists exactly the given migrations: then
 * there is nothing to apply, and one query replaces the knex migrator's
 * round of catalogue lookups, lock-table updates and reads (about 15
 * statements a service; a warm `npm start` migrates six schemas on one
 * PGlite session). Any doubt (no table yet, a name missing or unknown) is
 * left to the migrator, which applies, locks and checks as before.
 */
export async function upToDate(knex: Knex, table: string, migrations: readonly Migration[]): Promise<boolean> {
  // to_regclass, not a failing select: an error would be logged by the server (and by PGlite on stderr).
  const found = (await knex.raw("select to_regclass(?) is not null as present", [table])) as { rows: { present: boolean }[] };
  if (!found.rows[0]?.present) return false;
  const rows: { name: string }[] = await knex(table).select("name");
  return sameNames(
    rows.map((row) => row.name),
    migrations.map((migration) => migration.name),
  );
}

/** The same names, each once, in any order. */
export function sameNames(applied: readonly string[], known: readonly string[]): boolean {
  const set = new Set(applied);
  return set.size === applied.length && applied.length === known.length && known.every((name) => set.has(name));
}

/**
 * knex on pg when a PostgreSQL URL is given, on PGlite otherwise: the same
 * SQL, the same result types, each service with its own migrations table.
 */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  let knex: Knex;
  let kind: Database["kind"];
  let releaseEmbedded: (() => Promise<void>) | undefined;
  if (options.url) {
    kind = "postgres";
    knex = knexFactory({
      client: "pg",
      connection: { connectionString: options.url, types: pgTypes } as Knex.PgConnectionConfig,
      pool: { min: 0, max: options.poolMax ?? 10 },
    });
  } else {
    kind = "pglite";
    const modules = await loadEmbeddedPostgres(options.urlSetting ?? "a database URL");
    if (options.dataDir && !options.dataDir.includes("://")) {
      const shared = await sharedPgliteConfig(modules, options.dataDir, options.schema ?? "public");
      knex = knexFactory(shared.config);
      releaseEmbedded = shared.release;
    } else {
      // A throw-away database of its own (tests): nothing to share.
      knex = knexFactory({ client: modules.ClientPgLite, dialect: "postgres", connection: { filename: options.dataDir ?? "memory://" } } as Knex.Config);
    }
  }
  await knex.raw("select 1");
  const source: Knex.MigrationSource<Migration> = {
    getMigrations: async () => [...options.migrations].sort((a, b) => a.name.localeCompare(b.name)),
    getMigrationName: (migration) => migration.name,
    getMigration: async (migration) => ({ up: (db) => migration.up(db), down: (db) => migration.down(db) }),
  };
  const migrationConfig: Knex.MigratorConfig = { migrationSource: source, tableName: options.migrationsTable };
  const latest = () => knex.migrate.latest(migrationConfig) as Promise<unknown>;
  let closing: Promise<void> | undefined;
  return {
    knex,
    kind,
    async migrate() {
      if (await upToDate(knex, options.migrationsTable, options.migrations)) return [];
      const [, applied] = (await (kind === "postgres" ? withMigrationLock(knex, options.migrationsTable, latest) : latest())) as [number, string[]];
      if (applied.length) options.log.info({ applied, kind }, "database migrated");
      return applied;
    },
    close() {
      closing ??= (async () => {
        await knex.destroy();
        await releaseEmbedded?.();
      })();
      return closing;
    },
  };
}
