/**
 * A fresh PostgreSQL database per test, dropped afterwards. Skips (or, in CI,
 * fails) when no server answers at MESHWORK_TEST_PG_URL.
 */
import { randomBytes } from "node:crypto";
import type { TestContext } from "node:test";
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
 * Creates an empty database for this test and returns its URL, or undefined
 * when the test was skipped. The database is dropped when the test ends.
 */
export async function createTestDatabase(t: TestContext, label = "test"): Promise<string | undefined> {
  if (!needs(t, "PostgreSQL", await reachable(adminUrl()))) return undefined;
  const name = `mw_${label.replace(/[^a-z0-9]/gi, "_").toLowerCase().slice(0, 30)}_${randomBytes(4).toString("hex")}`;
  await admin((client) => client.query(`create database "${name}"`));
  t.after(() => admin((client) => client.query(`drop database if exists "${name}" with (force)`)));
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  return url.toString();
}
