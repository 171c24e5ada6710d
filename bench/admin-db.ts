/** The PostgreSQL server the benches make their throw-away databases on (MESHWORK_TEST_PG_URL, as the tests). */
import pg from "pg";

export const adminUrl = process.env.MESHWORK_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

/** Runs one statement (create or drop database) on its own connection to the admin database. */
export async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** The URL of `database` on the same server. */
export function databaseUrl(database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}
