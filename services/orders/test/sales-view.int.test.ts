/**
 * The sales view on a real PostgreSQL, where a rebuild, the live projection,
 * readers and writers run at once: the suite (also run on PGlite), then what
 * only concurrency shows.
 */
import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { ProjectionLockedError, type Knex } from "@meshwork/platform";
import { createSalesProjection, readSalesReport, rebuildSalesView, SHADOW_SALES } from "../src/sales-view.js";
import { untilProjected, viewRows, writeOrder, type SoldLine } from "./sales-view.support.js";
import { salesViewSuite } from "./sales-view.suite.js";
import { ordersDatabase } from "./support.js";

salesViewSuite("PostgreSQL");

const tea = (quantity: number): SoldLine => ({ productId: "MW-TEA-TIN", quantity, unitPriceMinor: 1250, currency: "EUR" });
const H10 = new Date("2026-03-01T10:00:00Z");
const day = { from: H10, to: new Date(H10.getTime() + 24 * 3_600_000) };

/** Returns once a session of this database waits for a lock on `relation`; polls by queries, a bounded number of times. */
async function untilLockAwaitedOn(db: Knex, relation: string): Promise<void> {
  for (let attempt = 0; attempt < 10_000; attempt++) {
    const { rows } = (await db.raw(
      `select count(*) as waiting from pg_locks l join pg_class c on c.oid = l.relation where not l.granted and c.relname = ? and l.database = (select oid from pg_database where datname = current_database())`,
      [relation],
    )) as { rows: { waiting: number }[] };
    if (Number(rows[0]?.waiting) > 0) return;
  }
  throw new Error(`nobody ever waited for a lock on ${relation}`);
}

describe("sales view on PostgreSQL, concurrently", () => {
  test("while a rebuild runs, a second rebuild is refused at once naming the projection, and the live projection, reads and new orders carry on", async (t) => {
    const db = await ordersDatabase(t, "PostgreSQL");
    if (!db) return;
    for (let index = 0; index < 5; index++) await writeOrder(db, { lines: [tea(1)], ending: "confirmed", at: H10 });
    const live = createSalesProjection();
    await untilProjected(db, () => live.catchUp(db));
    // Committed before the rebuild starts, not yet in the live view.
    for (let index = 0; index < 3; index++) await writeOrder(db, { lines: [tea(2)], ending: "confirmed", at: H10 });

    // Hold the rebuild inside its first batch: a table lock on a shadow table
    // (a table lock takes no transaction id, so it holds back no reader).
    const gate = await db.transaction();
    let rebuild: Promise<unknown> | undefined;
    try {
      await gate.raw(`lock table ${SHADOW_SALES.products} in exclusive mode`);
      rebuild = rebuildSalesView(db, { batchSize: 4 });
      await untilLockAwaitedOn(db, SHADOW_SALES.products);

      await assert.rejects(rebuildSalesView(db, {}), (error: unknown) => error instanceof ProjectionLockedError && /projection sales is already being rebuilt/.test(error.message));

      // The live projection handles the three orders committed before the rebuild's batch began.
      await untilProjected(db, () => live.catchUp(db));
      const report = await readSalesReport(db, day);
      assert.deepEqual(
        report.products.map((row) => row.units),
        [11],
      );
      assert.equal(report.outcomes.confirmed, 8);
      // And the service still takes orders (the live view gets them once the rebuild's batch ends).
      await writeOrder(db, { lines: [tea(5)], ending: "confirmed", at: H10 });
    } finally {
      await gate.commit();
    }
    assert.deepEqual(await rebuild, { name: "sales", handled: 36, resumed: false, differences: 0, swapped: true });
    await untilProjected(db, () => live.catchUp(db));
    assert.deepEqual((await viewRows(db)).products, ["2026-03-01T10:00:00.000Z MW-TEA-TIN EUR units=16 revenue=20000"]);
  });

  test("two instances running the projection at once count every order once: the second waits on the checkpoint and continues from it", async (t) => {
    const db = await ordersDatabase(t, "PostgreSQL");
    if (!db) return;
    const orders = 30;
    const writing = (async () => {
      for (let index = 0; index < orders; index++) await writeOrder(db, { lines: [tea(1)], ending: index % 3 === 0 ? "failed" : "confirmed", at: H10 });
    })();
    const first = createSalesProjection({ batchSize: 7 });
    const second = createSalesProjection({ batchSize: 7 });
    await writing;
    await untilProjected(db, () => Promise.all([first.catchUp(db), second.catchUp(db)]));
    const report = await readSalesReport(db, day);
    assert.deepEqual(report.outcomes, { confirmed: 20, rejected: 0, failed: 10 });
    assert.equal(report.products[0]?.units, 20);
  });

  test("after a run of orders placed concurrently with the live projection, a rebuild finds no difference", async (t) => {
    const db = await ordersDatabase(t, "PostgreSQL");
    if (!db) return;
    const live = createSalesProjection({ batchSize: 16 });
    let writing = true;
    const following = (async () => {
      while (writing) await live.catchUp(db);
    })();
    const endings = ["confirmed", "rejected", "failed", "confirmed"] as const;
    await Promise.all(
      Array.from({ length: 8 }, async (_, worker) => {
        for (let index = 0; index < 10; index++)
          await writeOrder(db, {
            lines: [tea(1 + worker), { productId: "MW-MUG", quantity: 1, unitPriceMinor: 900, currency: "EUR" }],
            ending: endings[(worker + index) % 4]!,
            at: new Date(H10.getTime() + index * 1_800_000),
          });
      }),
    );
    writing = false;
    await following;
    await untilProjected(db, () => live.catchUp(db));
    const report = await rebuildSalesView(db, { check: true });
    assert.equal(report.differences, 0);
    assert.equal(report.handled, (await db("events").count({ n: "*" }))[0]?.n);
    assert.equal((await readSalesReport(db, day)).outcomes.confirmed, 40);
  });
});
