/**
 * Point 8 of the security issue: no card token at rest in clear in orders'
 * PostgreSQL database. Each test reads the tables directly, as anyone with
 * the database (a dump, a replica, a stolen backup) would.
 */
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, test } from "vitest";
import { createSilentLogger, openDatabase, type Knex } from "@meshwork/platform";
import { createTestDatabase, type TestScope } from "@meshwork/testing";
import { migrations } from "../migrations/index.js";
import { resolveCardTokenKey } from "../src/adapters/card-token-cipher.js";
import { loadOrdersConfig } from "../src/config.js";
import type { OrderRecord } from "../src/orders.js";
import type { SagaSteps } from "../src/ports.js";
import { createSagaRunner } from "../src/saga-runner.js";
import { eventFactory, newOrder, orderStore, ordersDatabase } from "./support.js";

/** Every table of the orders database as text, to search for a token wherever it may sit. */
async function everything(db: Knex): Promise<string> {
  const tables: { table_name: string }[] = (await db.raw("select table_name from information_schema.tables where table_schema = current_schema() and table_type = 'BASE TABLE'")).rows;
  assert.ok(tables.some((table) => table.table_name === "orders"));
  const dumps = await Promise.all(tables.map(async ({ table_name }) => JSON.stringify(await db(table_name).select("*"))));
  return dumps.join("\n");
}

const stepsRecording = (tokens: string[]): SagaSteps => ({
  reserveStock: async (order) => ({ kind: "reserved", lines: order.lines.map((line) => ({ productId: line.productId, quantity: line.quantity, unitPriceMinor: 500, currency: "EUR" })) }),
  authorizePayment: async (order) => {
    tokens.push(order.cardToken);
    return order.cardToken.startsWith("tok_declined") ? { kind: "declined", reason: "card declined" } : { kind: "authorized" };
  },
  compensate: async () => ({ kind: "compensated", stockReleased: true, paymentVoided: false }),
});

function runSagas(t: TestScope, db: Knex, tokens: string[], owner: string) {
  const finals = new Map<string, (order: OrderRecord) => void>();
  const runner = createSagaRunner({
    store: orderStore(db),
    steps: stepsRecording(tokens),
    policy: { maxAttempts: 3, backoffBaseMs: 5, backoffMaxMs: 20 },
    event: eventFactory,
    log: createSilentLogger(),
    owner,
    stepTimeoutMs: 1000,
    leaseMs: 5000,
    concurrency: 4,
    pollIntervalMs: 20,
    onChange: (order) => {
      if (order.status !== "pending") finals.get(order.id)?.(order);
    },
  });
  t.onTestFinished(() => runner.stop());
  return { runner, finalOf: (id: string) => new Promise<OrderRecord>((resolve) => finals.set(id, resolve)) };
}

describe("card tokens at rest in orders' PostgreSQL database", () => {
  test("a placed order's token is nowhere in the database in clear, and the saga still gets it to authorise", async (t) => {
    const db = await ordersDatabase(t, "PostgreSQL");
    if (!db) return;
    const token = `tok_${randomUUID()}`;
    const { order } = await orderStore(db).place(newOrder("u-seal", { cardToken: token }), eventFactory);
    const stored = await everything(db);
    assert.ok(!stored.includes(token), "the clear token is stored");
    const row = await db("orders").where("id", order.id).first();
    assert.match(row.card_token_sealed, /^v1\.[\w-]+\.[\w-]+$/);
    assert.equal(row.card_token, "");

    const tokens: string[] = [];
    const { runner, finalOf } = runSagas(t, db, tokens, "runner");
    const final = finalOf(order.id);
    runner.start();
    assert.equal((await final).status, "confirmed");
    assert.deepEqual(tokens, [token]);
  });

  test("after a crash between the steps, another instance (a restart) opens the token and authorises", async (t) => {
    const db = await ordersDatabase(t, "PostgreSQL");
    if (!db) return;
    const token = `tok_${randomUUID()}`;
    const crashed = orderStore(db);
    const { order } = await crashed.place(newOrder("u-crash", { cardToken: token }), eventFactory);
    const [claimed] = await crashed.claim("crashed", 1, 60_000);
    await crashed.apply(
      claimed!,
      order,
      {
        step: "authorize_payment",
        attempts: 0,
        delayMs: 0,
        authorizeAttempted: false,
        outcome: undefined,
        lines: [{ productId: "MW-TEA-TIN", quantity: 1, unitPriceMinor: 500, currency: "EUR" }],
        history: [{ step: "stock_reserved", detail: "" }],
      },
      60_000,
      eventFactory,
    );
    assert.ok(!(await everything(db)).includes(token));
    const tokens: string[] = [];
    const { runner, finalOf } = runSagas(t, db, tokens, "survivor");
    const final = finalOf(order.id);
    await db("sagas").update({ lease_until: db.raw("now() - interval '1 second'") });
    runner.start();
    assert.equal((await final).status, "confirmed");
    assert.deepEqual(tokens, [token]);
  });

  test("once the payment step is over (authorised or declined) the sealed token is erased too", async (t) => {
    const db = await ordersDatabase(t, "PostgreSQL");
    if (!db) return;
    const tokens: string[] = [];
    const { runner, finalOf } = runSagas(t, db, tokens, "eraser");
    const { order: paid } = await orderStore(db).place(newOrder("u-erase"), eventFactory);
    const { order: declined } = await orderStore(db).place(newOrder("u-erase", { cardToken: `tok_declined_${randomUUID()}` }), eventFactory);
    const finals = [finalOf(paid.id), finalOf(declined.id)];
    runner.start();
    assert.deepEqual(
      (await Promise.all(finals)).map((order) => order.status),
      ["confirmed", "rejected"],
    );
    for (const id of [paid.id, declined.id]) {
      const row: { card_token: string; card_token_sealed: string } = await db("orders").where("id", id).first();
      assert.equal(row.card_token_sealed, "", id);
      assert.equal(row.card_token, "", id);
    }
  });

  test("a sealed token does not open under another key or on another order's row", async (t) => {
    const db = await ordersDatabase(t, "PostgreSQL");
    if (!db) return;
    const store = orderStore(db);
    const { order: first } = await store.place(newOrder("u-aad"), eventFactory);
    const { order: second } = await store.place(newOrder("u-aad"), eventFactory);
    await assert.rejects(orderStore(db, randomBytes(32)).get(first.id), /does not open with this ORDERS_CARD_TOKEN_KEY/);
    const sealed = (await db("orders").where("id", first.id).first()).card_token_sealed;
    await db("orders").where("id", second.id).update({ card_token_sealed: sealed });
    await assert.rejects(store.get(second.id), /does not open/);
  });

  test("rows written in clear before sealing are migrated: tokens a saga still needs are sealed, the others erased, none lost", async (t) => {
    const url = await createTestDatabase(t, "orders-legacy");
    if (!url) return;
    // The schema as it was, with two orders written by the old code.
    const before = await openDatabase({ url, migrations: migrations.slice(0, 3), migrationsTable: "orders_migrations", log: createSilentLogger() });
    await before.migrate();
    const waiting = { id: randomUUID(), token: `tok_${randomUUID()}` };
    const finished = { id: randomUUID(), token: `tok_${randomUUID()}` };
    for (const [row, status, step] of [
      [waiting, "pending", "authorize_payment"],
      [finished, "confirmed", "done"],
    ] as const) {
      await before.knex("orders").insert({
        id: row.id,
        user_id: "legacy",
        idempotency_key: row.id,
        fingerprint: "f",
        request_id: "r",
        status,
        lines: JSON.stringify([{ productId: "MW-TEA-TIN", quantity: 1, unitPriceMinor: 500, currency: "EUR" }]),
        total_minor: 500,
        currency: "EUR",
        card_token: row.token,
      });
      await before.knex("sagas").insert({ order_id: row.id, step });
    }
    await before.close();

    const after = await openDatabase({ url, migrations, migrationsTable: "orders_migrations", log: createSilentLogger() });
    t.onTestFinished(() => after.close());
    await after.migrate();
    const store = orderStore(after.knex);
    assert.equal(await store.sealClearCardTokens(), 1, "only the waiting order still held its token");
    const stored = await everything(after.knex);
    assert.ok(!stored.includes(waiting.token) && !stored.includes(finished.token), "a clear token is left");
    assert.equal((await store.get(waiting.id))?.cardToken, waiting.token, "the waiting saga can still authorise");
    assert.equal(await store.sealClearCardTokens(), 0, "sealing twice changes nothing");
  });
});

describe("the card token key", () => {
  test("without ORDERS_CARD_TOKEN_KEY, one key file is made beside the data directory and every start reads it back", async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), "meshwork-card-key-"));
    t.onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const source = { configured: "", databaseUrl: "postgres://x@127.0.0.1/db", dataDir: path.join(dir, "pglite") };
    const results = await Promise.all([resolveCardTokenKey(source), resolveCardTokenKey(source), resolveCardTokenKey(source)]);
    const file = path.join(dir, "orders-card-token.key");
    assert.equal(new Set(results.map((result) => result.key.toString("hex"))).size, 1, "instances starting at once agree on one key");
    assert.equal(results.filter((result) => result.from.startsWith("new ")).length, 1);
    assert.equal((await stat(file)).mode & 0o077, 0, "the key file is private to its owner");
    const again = await resolveCardTokenKey(source);
    assert.equal(again.key.toString("base64url"), (await readFile(file, "utf8")).trim());
    assert.deepEqual(again.key, results[0]!.key);
  });

  test("ORDERS_CARD_TOKEN_KEY and ORDERS_CARD_TOKEN_KEY_FILE are read; a key of the wrong size stops start-up naming the setting", async (t) => {
    const key = randomBytes(32).toString("base64url");
    assert.equal(loadOrdersConfig({ ORDERS_CARD_TOKEN_KEY: key }).cardTokenKey, key);
    const dir = await mkdtemp(path.join(tmpdir(), "meshwork-card-key-"));
    t.onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, "key");
    await writeFile(file, `${key}\n`);
    assert.equal(loadOrdersConfig({ ORDERS_CARD_TOKEN_KEY_FILE: file }).cardTokenKey, key);
    assert.throws(() => loadOrdersConfig({ ORDERS_CARD_TOKEN_KEY: randomBytes(16).toString("base64url") }), /ORDERS_CARD_TOKEN_KEY/);
    const resolved = await resolveCardTokenKey({ configured: key, databaseUrl: undefined, dataDir: "memory://" });
    assert.equal(resolved.key.toString("base64url"), key);
  });
});
