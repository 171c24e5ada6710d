/** runSql on the embedded PGlite: on its own, and inside a knex transaction, whose fate it shares. */
import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { openMigratedTestDatabase, type TestScope } from "@meshwork/testing";
import { inSqlTransaction, runSql, sqlStatement } from "./sql.js";

async function pglite(t: TestScope) {
  const database = await openMigratedTestDatabase(t, "PGlite", {
    label: "sql",
    migrations: [
      {
        name: "0001_notes",
        up: async (db) => {
          await db.raw("create table notes (id integer primary key, body text not null, written_at timestamptz not null default now())");
        },
        down: async (db) => {
          await db.raw("drop table notes");
        },
      },
    ],
    migrationsTable: "sql_migrations",
  });
  return database!.knex;
}

const insert = sqlStatement("test_notes_insert", "insert into notes (id, body) values ($1, $2) returning id, body");
const count = sqlStatement("test_notes_count", "select count(*)::integer as n from notes");

describe("runSql on PGlite", () => {
  test("runs a statement with its values and answers its rows and row count", async (t) => {
    const db = await pglite(t);
    const result = await runSql<{ id: number; body: string }>(db, insert, [1, "first"]);
    assert.deepEqual(result.rows, [{ id: 1, body: "first" }]);
    assert.equal(result.rowCount, 1);
    assert.equal(insert.operation, "insert");
  });

  test("inside a knex transaction it is part of it: a rollback takes its write back", async (t) => {
    const db = await pglite(t);
    await assert.rejects(
      db.transaction(async (trx) => {
        await runSql(trx, insert, [1, "rolled back"]);
        assert.equal((await runSql<{ n: number }>(trx, count, [])).rows[0]?.n, 1, "the transaction sees its own write");
        throw new Error("abort");
      }),
      /abort/,
    );
    assert.equal((await runSql<{ n: number }>(db, count, [])).rows[0]?.n, 0);
  });

  test("a finished transaction is refused rather than run outside it", async (t) => {
    const db = await pglite(t);
    let finished: Parameters<Parameters<typeof db.transaction>[0]>[0] | undefined;
    await db.transaction(async (trx) => {
      finished = trx;
    });
    await assert.rejects(runSql(finished!, insert, [2, "late"]), /already complete/);
    assert.equal((await runSql<{ n: number }>(db, count, [])).rows[0]?.n, 0);
  });

  test("a database error reaches the caller with its code", async (t) => {
    const db = await pglite(t);
    await runSql(db, insert, [1, "first"]);
    await assert.rejects(runSql(db, insert, [1, "again"]), (error: unknown) => (error as { code?: string }).code === "23505");
  });

  test("inSqlTransaction commits its statements, and its now is the time the rows' now() defaults take", async (t) => {
    const db = await pglite(t);
    const stamped = sqlStatement("test_notes_stamped", "insert into notes (id, body) values ($1, $2) returning written_at");
    const { now, writtenAt } = await inSqlTransaction(db, async (trx) => {
      const { rows } = await runSql<{ written_at: Date }>(trx, stamped, [1, "first"]);
      await runSql(trx, insert, [2, "second"]);
      return { now: trx.now, writtenAt: rows[0]!.written_at };
    });
    assert.ok(now instanceof Date);
    assert.equal(writtenAt.getTime(), now.getTime());
    assert.equal((await runSql<{ n: number }>(db, count, [])).rows[0]?.n, 2);
  });

  test("inSqlTransaction rolls back when its work throws, and refuses statements once it is over", async (t) => {
    const db = await pglite(t);
    let over: Parameters<Parameters<typeof inSqlTransaction>[1]>[0] | undefined;
    await assert.rejects(
      inSqlTransaction(db, async (trx) => {
        over = trx;
        await runSql(trx, insert, [1, "rolled back"]);
        throw new Error("abort");
      }),
      /abort/,
    );
    assert.equal((await runSql<{ n: number }>(db, count, [])).rows[0]?.n, 0);
    await assert.rejects(runSql(over!, insert, [2, "late"]), /already complete/);
    // The connection went back to the pool usable: a failed statement inside also rolls back and frees it.
    await assert.rejects(
      inSqlTransaction(db, async (trx) => {
        await runSql(trx, insert, [1, "a"]);
        await runSql(trx, insert, [1, "a again"]);
      }),
      (error: unknown) => (error as { code?: string }).code === "23505",
    );
    await runSql(db, insert, [3, "after"]);
    assert.equal((await runSql<{ n: number }>(db, count, [])).rows[0]?.n, 1);
  });
});
