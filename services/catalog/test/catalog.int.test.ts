/**
 * The catalog as it runs: the real server on port 0, over real gRPC, on a
 * fresh PostgreSQL database (skipped without one, failing in CI).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { describe, test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import { Health, HealthCheckResponse_ServingStatus } from "@meshwork/contracts/health/v1/health";
import { CatalogService, StockService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { Code, ConfigError, createClient, isRpcError, openDatabase, createSilentLogger, type Knex } from "@meshwork/platform";
import { createTestDatabase, startServiceProcess } from "@meshwork/testing";
import { migrations } from "../migrations/index.js";
import { startCatalog } from "../src/main.js";

const mainFile = path.resolve(import.meta.dirname, "../src/main.ts");

async function startOnPostgres(t: TestScope) {
  const url = await createTestDatabase(t, "catalog_int");
  if (url === undefined) return undefined;
  const running = await startCatalog({ CATALOG_PORT: "0", CATALOG_DATABASE_URL: url, CATALOG_LOG_LEVEL: "warn" });
  t.onTestFinished(async () => {
    await running.shutdown.run("test finished");
  });
  const target = `127.0.0.1:${running.port}`;
  const catalog = createClient(CatalogService, { target });
  const stock = createClient(StockService, { target });
  const health = createClient(Health, { target });
  t.onTestFinished(() =>
    [catalog, stock, health].forEach((client) => {
      client.close();
    }),
  );
  // A separate connection to look at the rows the service wrote.
  const database = await openDatabase({ url, migrations, migrationsTable: "catalog_migrations", log: createSilentLogger() });
  t.onTestFinished(() => database.close());
  return { running, catalog: catalog.client, stock: stock.client, health: health.client, db: database.knex };
}

const stockOf = async (db: Knex, id: string): Promise<number> => (await db("products").where({ id }).first("stock")).stock as number;
const reservedUnits = async (db: Knex, id: string): Promise<number> =>
  (await db.raw("select coalesce(sum(quantity), 0)::int as units from reservation_lines where product_id = ?", [id])).rows[0].units as number;
const reservationCount = async (db: Knex): Promise<number> => (await db("reservations").count({ n: "*" }))[0]!.n as number;

describe("catalog server on PostgreSQL", () => {
  test("serves: health SERVING, products listed from the seeded demo catalog", async (t) => {
    const service = await startOnPostgres(t);
    if (!service) return;
    assert.equal((await service.health.check({ service: "" })).status, HealthCheckResponse_ServingStatus.SERVING);
    assert.equal((await service.health.check({ service: "shop.catalog.v1.StockService" })).status, HealthCheckResponse_ServingStatus.SERVING);
    const page = await service.catalog.listProducts({ pageSize: 100 });
    assert.equal(page.products.length, 12);
    assert.ok(page.products.every((product) => product.price?.currencyCode === "EUR" && product.price.amountMinor > 0n));
  });

  test("50 concurrent reservations for the last 10 units: exactly 10 succeed and stock never goes negative", async (t) => {
    const service = await startOnPostgres(t);
    if (!service) return;
    await service.db("products").where({ id: "MW-HEADLAMP" }).update({ stock: 10 });
    const outcomes = await Promise.allSettled(Array.from({ length: 50 }, (_, index) => service.stock.reserveStock({ orderId: `race-${index}`, items: [{ productId: "MW-HEADLAMP", quantity: 1 }] })));
    const succeeded = outcomes.filter((outcome) => outcome.status === "fulfilled").length;
    const refused = outcomes.filter((outcome) => outcome.status === "rejected" && isRpcError(outcome.reason, Code.FAILED_PRECONDITION)).length;
    assert.equal(succeeded, 10);
    assert.equal(refused, 40, "every other call is refused as a business outcome, not an error");
    assert.equal(await stockOf(service.db, "MW-HEADLAMP"), 0);
    assert.equal(await reservedUnits(service.db, "MW-HEADLAMP"), 10);
  });

  test("mixed concurrent reservations conserve stock: remaining + reserved = initial", async (t) => {
    const service = await startOnPostgres(t);
    if (!service) return;
    await service.db("products").whereIn("id", ["MW-HEADLAMP", "MW-CAST-PAN"]).update({ stock: 15 });
    await Promise.allSettled(
      Array.from({ length: 40 }, (_, index) =>
        service.stock.reserveStock({
          orderId: `mix-${index}`,
          items: [
            { productId: "MW-CAST-PAN", quantity: 1 + (index % 3) },
            { productId: "MW-HEADLAMP", quantity: 1 + ((index + 1) % 2) },
          ],
        }),
      ),
    );
    for (const id of ["MW-HEADLAMP", "MW-CAST-PAN"]) {
      const reserved = await reservedUnits(service.db, id);
      const remaining = await stockOf(service.db, id);
      assert.ok(remaining >= 0);
      assert.ok(reserved > 0, "some reservations went through");
      assert.equal(remaining + reserved, 15, `${id}: ${remaining} left + ${reserved} reserved`);
    }
  });

  test("the same order reserved 10 times at once takes the stock once", async (t) => {
    const service = await startOnPostgres(t);
    if (!service) return;
    const before = await stockOf(service.db, "MW-TEA-TIN");
    const results = await Promise.all(Array.from({ length: 10 }, () => service.stock.reserveStock({ orderId: "twice", items: [{ productId: "MW-TEA-TIN", quantity: 3 }] })));
    assert.ok(results.every((result) => result.reservation?.orderId === "twice"));
    assert.equal(await stockOf(service.db, "MW-TEA-TIN"), before - 3);
    await service.stock.releaseStock({ orderId: "twice" });
    await service.stock.releaseStock({ orderId: "twice" });
    assert.equal(await stockOf(service.db, "MW-TEA-TIN"), before);
  });

  test("malformed or out-of-range input: INVALID_ARGUMENT naming the field, and no row written", async (t) => {
    const service = await startOnPostgres(t);
    if (!service) return;
    const before = await service.db("products").orderBy("id").select("id", "stock");
    const attempts: [Promise<unknown>, string][] = [
      [service.stock.reserveStock({ orderId: "bad-1", items: [{ productId: "MW-TEA-TIN", quantity: -1 }] }), "items[0].quantity"],
      [service.stock.reserveStock({ orderId: "bad-2", items: [{ productId: "MW-TEA-TIN", quantity: 1001 }] }), "items[0].quantity"],
      [service.stock.reserveStock({ orderId: "bad-3", items: [] }), "items"],
      [service.stock.reserveStock({ orderId: "x".repeat(5000), items: [{ productId: "MW-TEA-TIN", quantity: 1 }] }), "order_id"],
      [service.stock.reserveStock({ orderId: "bad-4", items: [{ productId: "MW-TEA-TIN;drop table products", quantity: 1 }] }), "items[0].product_id"],
      [service.stock.releaseStock({ orderId: "" }), "order_id"],
      [service.catalog.listProducts({ pageSize: 101 }), "page_size"],
      [service.catalog.getProduct({ productId: "" }), "product_id"],
    ];
    for (const [attempt, field] of attempts) {
      const error = await attempt.then(
        () => undefined,
        (caught: unknown) => caught,
      );
      assert.ok(isRpcError(error, Code.INVALID_ARGUMENT), `expected INVALID_ARGUMENT for ${field}, got ${String(error)}`);
      assert.equal(error.field, field);
      assert.ok(error.message.startsWith(`${field}:`), error.message);
    }
    assert.equal(await reservationCount(service.db), 0);
    assert.deepEqual(await service.db("products").orderBy("id").select("id", "stock"), before);
    // Still serving afterwards.
    assert.ok((await service.catalog.getProduct({ productId: "MW-TEA-TIN" })).product);
  });
});

describe("catalog process", () => {
  test("an invalid setting stops start-up with the variable named", async () => {
    await assert.rejects(startCatalog({ CATALOG_PORT: "eighty", CATALOG_DATA_DIR: "memory://" }), (error: unknown) => {
      return error instanceof ConfigError && /CATALOG_PORT \(port\): expected a port number; got "eighty"/.test(error.message);
    });
  });

  test("as its own process: exits 1 naming a bad key; on SIGTERM drains and exits 0", async (t) => {
    const bad = spawn(process.execPath, ["--import", "tsx", mainFile], {
      env: { ...process.env, CATALOG_PORT: "99999", CATALOG_DATA_DIR: "memory://" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    bad.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const [badCode] = (await once(bad, "exit")) as [number];
    assert.equal(badCode, 1);
    assert.match(stderr, /CATALOG_PORT \(port\): expected a port from 0 to 65535; got "99999"/);

    const service = await startServiceProcess(t, { mainFile, name: "catalog", env: { CATALOG_PORT: "0", CATALOG_DATA_DIR: "memory://", CATALOG_LOG_LEVEL: "info" } });
    const { client: health, close } = createClient(Health, { target: `127.0.0.1:${service.port}` });
    t.onTestFinished(close);
    assert.equal((await health.check({ service: "" })).status, HealthCheckResponse_ServingStatus.SERVING);
    assert.equal(await service.terminate(), 0);
    const steps = service.shutdownSteps();
    // The metrics endpoint and the span exporter go last: the shutdown itself is still observed.
    assert.deepEqual(steps, ["health NOT_SERVING", "deregister", "drain gRPC calls", "stop discovery", "close database", "stop metrics endpoint", "flush traces"]);
  });
});
