/**
 * `npm run projections:rebuild` as a user runs it: the script against a
 * PostgreSQL orders database, by projection name.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "vitest";
import { createSilentLogger, openDatabase } from "@meshwork/platform";
import { createTestDatabase } from "@meshwork/testing";
import { runProcess } from "../../../test/support/run-process.js";
import { migrations } from "../migrations/index.js";
import { eventFactory, newOrder, orderStore } from "./support.js";

const root = path.resolve(import.meta.dirname, "..", "..", "..");
const cli = (args: string[], url: string) =>
  runProcess(process.execPath, ["--import", "tsx", "scripts/projections-rebuild.ts", ...args], { cwd: root, timeoutMs: 60_000, env: { ...process.env, ORDERS_DATABASE_URL: url } });

test("projections:rebuild checks and rebuilds the orders view and the sales view by name, and refuses a name it does not know", { timeout: 120_000 }, async (t) => {
  const url = await createTestDatabase(t, "orders-rebuild-cli");
  if (!url) return;
  const database = await openDatabase({ url, migrations, migrationsTable: "orders_migrations", log: createSilentLogger() });
  t.onTestFinished(() => database.close());
  await database.migrate();
  const store = orderStore(database.knex);
  const ids: string[] = [];
  for (let index = 0; index < 3; index++) ids.push((await store.place(newOrder("cli"), eventFactory)).order.id);
  await database.knex("orders").where("id", ids[1]).update({ status: "confirmed" });

  const unknown = await cli(["stock"], url);
  assert.equal(unknown.code, 1, unknown.stderr);
  assert.match(unknown.stderr, /no projection named "stock": the orders service has orders, sales/);

  const check = await cli(["orders", "--check"], url);
  assert.equal(check.code, 2, `${check.stdout}${check.stderr}`);
  assert.match(check.stdout, /^orders: 3 handled, 1 differed from the live view, nothing written/);
  assert.equal((await database.knex("orders").where("id", ids[1]).first("status")).status, "confirmed");

  const rebuild = await cli(["orders"], url);
  assert.equal(rebuild.code, 0, rebuild.stderr);
  assert.match(rebuild.stdout, /^orders: 3 handled, 1 differed from the live view, rebuilt view in place/);
  assert.equal((await database.knex("orders").where("id", ids[1]).first("status")).status, "pending");
  const again = await cli(["orders", "--check"], url);
  assert.equal(again.code, 0, again.stdout);

  const sales = await cli(["sales", "--batch-size", "2"], url);
  assert.equal(sales.code, 0, sales.stderr);
  assert.match(sales.stdout, /^sales: 3 handled, 0 differed from the live view, rebuilt view in place/);
  const bad = await cli(["sales", "--batch-size", "0"], url);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--batch-size 0: expected a whole number from 1 to 10000/);
});
