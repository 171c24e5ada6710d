/**
 * A PostgreSQL server of a test's own, so the test can restart it without
 * disturbing anyone else's database: Debian's server binaries, a cluster in
 * a temporary directory, run as the `postgres` user (initdb refuses root).
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import path from "node:path";
import type { TestScope } from "@meshwork/testing";
import { promisify } from "node:util";
import pg from "pg";

const run = promisify(execFile);

export interface PrivatePostgres {
  readonly port: number;
  /** URL of `database` as the superuser. */
  url(database: string): string;
  /** Stops the server (`immediate` is a crash: no checkpoint, WAL replay at start) and starts it again; answers how long it was down. */
  restart(mode: "fast" | "immediate"): Promise<number>;
}

function binaries(): string {
  const root = "/usr/lib/postgresql";
  const version = existsSync(root) ? readdirSync(root).sort().at(-1) : undefined;
  const bin = version ? path.join(root, version, "bin") : undefined;
  if (!bin || !existsSync(path.join(bin, "initdb"))) throw new Error("PostgreSQL server binaries not found under /usr/lib/postgresql/<version>/bin (Debian's postgresql package)");
  return bin;
}

export async function startPrivatePostgres(t: TestScope, databases: readonly string[]): Promise<PrivatePostgres> {
  const bin = binaries();
  const dir = await mkdtemp(path.join(tmpdir(), "meshwork-pg-"));
  const data = path.join(dir, "data");
  // initdb and postgres refuse to run as root: the cluster belongs to `postgres`.
  const asRoot = userInfo().uid === 0;
  const as = (command: string, args: string[]) => (asRoot ? run("runuser", ["-u", "postgres", "--", path.join(bin, command), ...args]) : run(path.join(bin, command), args));
  if (asRoot) {
    const { stdout } = await run("id", ["-u", "postgres"]);
    const { stdout: gid } = await run("id", ["-g", "postgres"]);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  t.onTestFinished(async () => {
    await as("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  await as("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
  // Below the ephemeral range; a clash with another server shows as a failed start.
  const port = 24_000 + Math.floor(Math.random() * 8000);
  const start = () => as("pg_ctl", ["-D", data, "-l", path.join(dir, "server.log"), "-w", "-t", "60", "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`, "start"]);
  await start();
  const url = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`;
  const admin = new pg.Client({ connectionString: url("postgres") });
  await admin.connect();
  try {
    for (const database of databases) await admin.query(`create database "${database}"`);
  } finally {
    await admin.end();
  }
  return {
    port,
    url,
    async restart(mode) {
      const began = performance.now();
      await as("pg_ctl", ["-D", data, "-m", mode, "-w", "stop"]);
      await start();
      return performance.now() - began;
    },
  };
}
