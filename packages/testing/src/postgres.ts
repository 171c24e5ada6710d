/**
 * A fresh PostgreSQL database per test, dropped afterwards. Skips (or, in CI,
 * fails) when no server answers at MESHWORK_TEST_PG_URL.
 */
import { randomBytes } from "node:crypto";
import type { TestScope } from "./scope.js";
import pg from "pg";
import { needs } from "./infra.js";

export const adminUrl = (): string => process.env.MESHWORK_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

async function reachable(url: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query("select 1");
    return undefined;
  } catch (error) {
    return `PostgreSQL at ${url.replace(/\/\/[^@]*@/, "//")}: ${error instanceof Error ? error.message : String(error)}`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * Creates an empty database for this test, owned by a login role of its own
 * that no other role shares (as each service has in the mesh: tests run as
 * that role, not as a superuser), and returns its URL, or undefined when the
 * test was skipped. Database and role are dropped when the test ends.
 */
export async function createTestDatabase(t: TestScope, label = "test"): Promise<string | undefined> {
  if (!needs(t, "PostgreSQL", await reachable(adminUrl()))) return undefined;
  const name = `mw_${label
    .replace(/[^a-z0-9]/gi, "_")
    .toLowerCase()
    .slice(0, 30)}_${randomBytes(4).toString("hex")}`;
  await admin(async (client) => {
    await client.query(`create role "${name}" login`);
    await client.query(`create database "${name}" owner "${name}"`);
    await client.query(`revoke all on database "${name}" from public`);
  });
  t.onTestFinished(() =>
    admin(async (client) => {
      await client.query(`drop database if exists "${name}" with (force)`);
      await client.query(`drop role if exists "${name}"`);
    }),
  );
  const url = new URL(adminUrl());
  url.username = name;
  url.password = "";
  url.pathname = `/${name}`;
  return url.toString();
}
