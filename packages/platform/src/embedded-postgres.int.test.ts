import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "vitest";
import { openDatabase, type Migration } from "./database.js";
import { createSilentLogger } from "./logger.js";

const table = (name: string): Migration[] => [
  {
    name: "0001",
    up: async (db) => {
      await db.raw(`create table items (id serial primary key, owner text not null default '${name}')`);
    },
    down: async (db) => {
      await db.raw("drop table items");
    },
  },
];

test("services sharing one embedded directory each get their own schema, and their transactions never interleave", { timeout: 120_000 }, async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "meshwork-embedded-"));
  t.onTestFinished(() => rm(dir, { recursive: true, force: true }));
  const open = (schema: string) => openDatabase({ dataDir: dir, schema, migrations: table(schema), migrationsTable: `${schema}_migrations`, log: createSilentLogger() });
  const [a, b] = await Promise.all([open("alpha"), open("beta")]);
  t.onTestFinished(async () => {
    await Promise.all([a.close(), b.close()]);
  });
  await Promise.all([a.migrate(), b.migrate()]);
  // Same table name, two schemas: no clash.
  await a.knex("items").insert({ owner: "alpha" });
  await b.knex("items").insert([{ owner: "beta" }, { owner: "beta" }]);
  assert.equal((await a.knex("items").count({ n: "*" }))[0]?.n, 1);
  assert.equal((await b.knex("items").count({ n: "*" }))[0]?.n, 2);

  // A transaction of alpha spans awaits; beta's writes wait for it instead of landing inside it.
  const order: string[] = [];
  let inside!: () => void;
  const entered = new Promise<void>((resolve) => (inside = resolve));
  const alphaTx = a.knex.transaction(async (trx) => {
    await trx("items").insert({ owner: "alpha" });
    inside();
    await new Promise((resolve) => setImmediate(resolve));
    order.push("alpha wrote");
    throw new Error("roll back");
  });
  await entered;
  const betaWrite = b
    .knex("items")
    .insert({ owner: "beta" })
    .then(() => order.push("beta wrote"));
  await assert.rejects(alphaTx, /roll back/);
  await betaWrite;
  assert.deepEqual(order, ["alpha wrote", "beta wrote"]);
  assert.equal((await a.knex("items").count({ n: "*" }))[0]?.n, 1, "alpha's rollback undid only alpha's row");
  assert.equal((await b.knex("items").count({ n: "*" }))[0]?.n, 3);

  // Closing one service keeps the server open for the other.
  await a.close();
  assert.equal((await b.knex("items").count({ n: "*" }))[0]?.n, 3);
  await b.close();
  // And the data survives a restart.
  const again = await open("beta");
  t.onTestFinished(() => again.close());
  assert.equal((await again.knex("items").count({ n: "*" }))[0]?.n, 3);
});
