import assert from "node:assert/strict";
import { describe, test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import { openDatabase, upToDate, type Database, type Migration } from "./database.js";
import { createSilentLogger } from "./logger.js";
import { createTestDatabase, openEmbeddedTestDatabase } from "@meshwork/testing";

export const migrations: Migration[] = [
  {
    name: "0001_things",
    up: async (db) => {
      await db.raw(
        "create table things (id bigserial primary key, big bigint not null, price numeric(12,2) not null, tags text[] not null, doc jsonb not null, at timestamptz not null default now(), ok boolean not null)",
      );
    },
    down: async (db) => {
      await db.raw("drop table things");
    },
  },
];

type Opener = (t: TestScope) => Promise<Database | undefined>;

export const engines = {
  "PGlite (embedded)": async () => openEmbeddedTestDatabase({ migrations, migrationsTable: "demo_migrations" }),
  "PostgreSQL (pg)": async (t) => {
    const url = await createTestDatabase(t, "platform_db");
    if (url === undefined) return undefined;
    return openDatabase({ url, migrations, migrationsTable: "demo_migrations", log: createSilentLogger() });
  },
} satisfies Record<string, Opener>;

/** The database port on one engine: PGlite in database.test.ts, PostgreSQL in database.int.test.ts. */
export function databaseSuite(engine: keyof typeof engines): void {
  const open: Opener = engines[engine];
  describe(`database on ${engine}`, () => {
    test("migrations run once, into the service's own migrations table", async (t) => {
      const database = await open(t);
      if (!database) return;
      t.onTestFinished(() => database.close());
      assert.deepEqual(await database.migrate(), ["0001_things"]);
      assert.deepEqual(await database.migrate(), []);
      const tables = await database.knex("information_schema.tables").whereRaw("table_schema = current_schema()").pluck("table_name");
      assert.ok(tables.includes("demo_migrations"), `tables: ${tables.join(", ")}`);
    });

    test("a schema counts as migrated only when its table lists exactly the known migrations: a new one still runs", async (t) => {
      const database = await open(t);
      if (!database) return;
      t.onTestFinished(() => database.close());
      assert.equal(await upToDate(database.knex, "demo_migrations", migrations), false, "no migrations table yet");
      await database.migrate();
      assert.equal(await upToDate(database.knex, "demo_migrations", migrations), true);
      const later: Migration = { name: "0002_more", up: (db) => db.raw("alter table things add column note text"), down: (db) => db.raw("alter table things drop column note") };
      assert.equal(await upToDate(database.knex, "demo_migrations", [...migrations, later]), false);
    });

    test("result types are the same on both engines: int8 and count(*) as numbers, numeric as exact text, arrays, jsonb, dates, booleans", async (t) => {
      const database = await open(t);
      if (!database) return;
      t.onTestFinished(() => database.close());
      await database.migrate();
      const { knex } = database;
      await knex("things").insert({ big: 9_007_199_254_740_991, price: "12.50", tags: ["a", "b"], doc: { k: [1, 2] }, ok: true });
      const row = await knex("things").first();
      assert.equal(typeof row.id, "number");
      assert.equal(row.big, 9_007_199_254_740_991);
      assert.equal(row.price, "12.50");
      assert.deepEqual(row.tags, ["a", "b"]);
      assert.deepEqual(row.doc, { k: [1, 2] });
      assert.ok(row.at instanceof Date);
      assert.equal(row.ok, true);
      const { count } = (await knex("things").count({ count: "*" }))[0]!;
      assert.equal(count, 1);
      const { total } = (await knex("things").sum({ total: "big" }))[0]!;
      assert.equal(total, "9007199254740991");
      const { rows } = await knex.raw("select sum(big)::bigint as total from things");
      assert.equal(rows[0].total, 9_007_199_254_740_991);
    });

    test("a failed transaction writes nothing", async (t) => {
      const database = await open(t);
      if (!database) return;
      t.onTestFinished(() => database.close());
      await database.migrate();
      await assert.rejects(
        database.knex.transaction(async (trx) => {
          await trx("things").insert({ big: 1, price: 1, tags: [], doc: {}, ok: false });
          throw new Error("abort");
        }),
        /abort/,
      );
      const { count } = (await database.knex("things").count({ count: "*" }))[0]!;
      assert.equal(count, 0);
    });
  });
}
