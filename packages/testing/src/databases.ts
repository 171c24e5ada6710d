/**
 * Embedded PostgreSQL (PGlite) for unit tests, fast: one PGlite per test
 * process, in a temporary directory, and a schema of its own for every
 * database a test opens. Starting PGlite runs initdb in WebAssembly, seconds
 * on a busy machine; creating and migrating a schema takes milliseconds. It
 * is the platform's own shared embedded mode (the one `npm start` runs), so
 * the tests exercise what the all-in-one mode does.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createSilentLogger, openDatabase, type Database, type DatabaseOptions } from "@meshwork/platform";
import { createTestDatabase } from "./postgres.js";
import type { TestScope } from "./scope.js";

let shared: { readonly dir: string; readonly keeper: Promise<Database> } | undefined;
let schemas = 0;

/** This process's embedded data directory, kept open until the process exits. */
export function embeddedTestDataDir(): string {
  if (!shared) {
    const dir = mkdtempSync(path.join(tmpdir(), "meshwork-pglite-"));
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    // Holds the server open between tests: it closes when its last user does.
    const keeper = openDatabase({ dataDir: dir, schema: "keeper", migrations: [], migrationsTable: "keeper_migrations", log: createSilentLogger() });
    shared = { dir, keeper };
  }
  return shared.dir;
}

/**
 * Opens a new, empty schema of this process's embedded PGlite, like
 * `openDatabase({ dataDir: "memory://", ... })` but without starting a
 * server. Migrate and close it as any other Database.
 */
export async function openEmbeddedTestDatabase(options: Omit<DatabaseOptions, "url" | "dataDir" | "schema" | "log"> & { readonly log?: DatabaseOptions["log"] }): Promise<Database> {
  const dataDir = embeddedTestDataDir();
  await shared!.keeper;
  schemas += 1;
  return openDatabase({ log: createSilentLogger(), ...options, dataDir, schema: `test_${schemas}` });
}

export type TestEngine = "PGlite" | "PostgreSQL";

/**
 * A migrated database for one test, closed when it ends: a fresh schema of
 * this process's PGlite, or a fresh PostgreSQL database named after `label`
 * (undefined when the test was skipped for want of PostgreSQL).
 */
export async function openMigratedTestDatabase(
  t: TestScope,
  engine: TestEngine,
  options: { readonly label: string; readonly migrations: DatabaseOptions["migrations"]; readonly migrationsTable: string; readonly poolMax?: number },
): Promise<Database | undefined> {
  const { label, ...rest } = options;
  let database: Database;
  if (engine === "PostgreSQL") {
    const url = await createTestDatabase(t, label);
    if (url === undefined) return undefined;
    database = await openDatabase({ ...rest, url, log: createSilentLogger() });
  } else {
    database = await openEmbeddedTestDatabase(rest);
  }
  t.onTestFinished(() => database.close());
  await database.migrate();
  return database;
}
