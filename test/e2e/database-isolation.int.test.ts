/**
 * Each service owns its data: with the roles and databases the local mesh and
 * CI use (scripts/lib/service-databases.ts), the orders role cannot read the
 * catalog's tables, while the catalog runs its migrations as its own role.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "vitest";
import pg from "pg";
import { startCatalog } from "@meshwork/catalog";
import { adminUrl, needs } from "@meshwork/testing";
import { dropServiceDatabase, ensureServiceDatabase } from "../../scripts/lib/service-databases.js";

async function postgresMissing(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: adminUrl(), connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}

test("a service's role cannot read another service's tables", async (t) => {
  if (!needs(t, "PostgreSQL", await postgresMissing())) return;
  const suffix = `_t${randomBytes(3).toString("hex")}`;
  const catalogDb = await ensureServiceDatabase(adminUrl(), "catalog", suffix);
  const ordersDb = await ensureServiceDatabase(adminUrl(), "orders", suffix);
  t.onTestFinished(async () => {
    await dropServiceDatabase(adminUrl(), catalogDb);
    await dropServiceDatabase(adminUrl(), ordersDb);
  });

  // The catalog, as its own role, creates and fills its tables.
  const catalog = await startCatalog({ CATALOG_PORT: "0", CATALOG_DATABASE_URL: catalogDb.url, CATALOG_LOG_LEVEL: "warn" });
  await catalog.shutdown.run("test done");

  // The orders role is refused at the catalog's door...
  const intruderUrl = new URL(catalogDb.url);
  intruderUrl.username = ordersDb.role;
  const intruder = new pg.Client({ connectionString: intruderUrl.toString() });
  await assert.rejects(intruder.connect(), /permission denied for database/);
  await intruder.end().catch(() => undefined);

  // ...and the catalog role can read its own products.
  const owner = new pg.Client({ connectionString: catalogDb.url });
  await owner.connect();
  try {
    const { rows } = await owner.query("select count(*)::int as n from products");
    assert.equal(rows[0].n, 12);
    // Ownership is what lets it migrate: the tables belong to its role.
    const { rows: owners } = await owner.query("select tableowner from pg_tables where tablename = 'products'");
    assert.equal(owners[0].tableowner, catalogDb.role);
  } finally {
    await owner.end();
  }
});
