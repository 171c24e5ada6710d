import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { createSalesProjection, LIVE_SALES, readSalesReport, rebuildSalesView } from "../src/sales-view.js";
import { rebuildState, shadowIsEmpty, untilProjected, viewRows, writeOrder, type SoldLine } from "./sales-view.support.js";
import { ordersDatabase, type Engine } from "./support.js";

const tea = (quantity: number): SoldLine => ({ productId: "MW-TEA-TIN", quantity, unitPriceMinor: 1250, currency: "EUR" });
const mug = (quantity: number): SoldLine => ({ productId: "MW-MUG", quantity, unitPriceMinor: 900, currency: "EUR" });
const mugUsd = (quantity: number): SoldLine => ({ productId: "MW-MUG", quantity, unitPriceMinor: 1000, currency: "USD" });

const H10 = new Date("2026-03-01T10:00:00Z");
const at = (hour: Date, minutes: number, seconds = 0) => new Date(hour.getTime() + minutes * 60_000 + seconds * 1000);
const H11 = at(H10, 60);

/** The sales view on `engine`: run on PGlite by sales-view.test.ts, on PostgreSQL by sales-view.int.test.ts. */
export function salesViewSuite(engine: Engine, options: { readonly privateEmbedded?: boolean } = {}): void {
  describe(`sales view on ${engine}`, () => {
    test("confirmed orders count units and revenue per product and currency; rejected and failed ones only count as outcomes; pending ones not at all", async (t) => {
      const db = await ordersDatabase(t, engine, options);
      if (!db) return;
      await writeOrder(db, { lines: [tea(2), mug(1)], ending: "confirmed", at: at(H10, 5) });
      await writeOrder(db, { lines: [tea(1), mugUsd(3)], ending: "confirmed", at: at(H10, 40) });
      await writeOrder(db, { lines: [tea(7)], ending: "rejected", at: at(H10, 41) });
      await writeOrder(db, { lines: [mug(4)], ending: "failed", at: at(H10, 42) });
      await writeOrder(db, { lines: [mug(9)], ending: "pending", at: at(H10, 43) });
      // Written by migration 0006 (schema 1): read through the upcasters.
      await writeOrder(db, { lines: [tea(10)], ending: "confirmed", at: at(H10, 50), schema1: true });

      const reader = createSalesProjection();
      await untilProjected(db, () => reader.catchUp(db));
      const report = await readSalesReport(db, { from: H10, to: H11 });
      assert.deepEqual(
        report.products.map(({ productId, currency, units, revenueMinor }) => ({ productId, currency, units, revenueMinor })),
        [
          { productId: "MW-MUG", currency: "EUR", units: 1, revenueMinor: 900 },
          { productId: "MW-MUG", currency: "USD", units: 3, revenueMinor: 3000 },
          { productId: "MW-TEA-TIN", currency: "EUR", units: 13, revenueMinor: 13 * 1250 },
        ],
      );
      assert.deepEqual(report.outcomes, { confirmed: 3, rejected: 1, failed: 1 });
      assert.equal(report.freshness.pendingEvents, 0, "the view has every committed event");
      assert.ok(report.freshness.lastEventAt, "the view says up to which event it is");
    });

    test("an order counts in the UTC hour its OrderConfirmed was recorded, down to the second before the hour turns", async (t) => {
      const db = await ordersDatabase(t, engine, options);
      if (!db) return;
      await writeOrder(db, { lines: [tea(1)], ending: "confirmed", at: at(H10, 59, 59) });
      await writeOrder(db, { lines: [tea(2)], ending: "confirmed", at: H11 });
      await writeOrder(db, { lines: [tea(4)], ending: "rejected", at: at(H11, 1) });
      const reader = createSalesProjection();
      await untilProjected(db, () => reader.catchUp(db));
      assert.deepEqual((await viewRows(db)).products, ["2026-03-01T10:00:00.000Z MW-TEA-TIN EUR units=1 revenue=1250", "2026-03-01T11:00:00.000Z MW-TEA-TIN EUR units=2 revenue=2500"]);
      assert.deepEqual((await viewRows(db)).outcomes, ["2026-03-01T10:00:00.000Z confirmed=1", "2026-03-01T11:00:00.000Z confirmed=1", "2026-03-01T11:00:00.000Z rejected=1"]);
      // The range is [from, to): the 10:00 hour alone.
      const tenOClock = await readSalesReport(db, { from: H10, to: H11 });
      assert.deepEqual(
        tenOClock.products.map((row) => row.units),
        [1],
      );
      assert.deepEqual(tenOClock.outcomes, { confirmed: 1, rejected: 0, failed: 0 });
    });

    test("an interrupted rebuild resumes where it stopped, and ends equal to the live view and to a clean rebuild", async (t) => {
      const db = await ordersDatabase(t, engine, options);
      if (!db) return;
      for (let index = 0; index < 12; index++) await writeOrder(db, { lines: [tea(1 + (index % 3)), mug(1)], ending: index % 4 === 3 ? "rejected" : "confirmed", at: at(H10, index * 10) });
      const live = createSalesProjection();
      await untilProjected(db, () => live.catchUp(db));
      const expected = await viewRows(db);

      // 12 orders of 4 or 3 events: 45 events, at most 5 per batch. A batch may come out shorter (the
      // reader's horizon is the oldest running transaction, and other tests share the server), so the
      // runs are checked by what they add up to: every event handled exactly once across three runs.
      // Each run's report is checked with the state it left (checkpoints, horizon, both views) in the
      // message: this test failed once in CI, a run that should have stopped swapping in a differing view.
      const lines: string[] = [];
      const log = (line: string) => lines.push(line);
      const first = await rebuildSalesView(db, { maxBatches: 3, batchSize: 5, log });
      const afterFirst = `first run ${JSON.stringify(first)}; log ${JSON.stringify(lines)}; state ${await rebuildState(db)}`;
      assert.deepEqual({ ...first, handled: 0 }, { name: "sales", handled: 0, resumed: false, differences: 0, swapped: false }, afterFirst);
      assert.ok(first.handled >= 3 && first.handled <= 15, `3 batches of at most 5 handled ${first.handled}`);
      assert.equal((await db("projection_checkpoints").where({ name: "sales:rebuild" }).first("position"))?.position > 0, true, "the shadow keeps its checkpoint");
      const second = await rebuildSalesView(db, { maxBatches: 2, batchSize: 5, log });
      const afterSecond = `second run ${JSON.stringify(second)}; ${afterFirst}; log ${JSON.stringify(lines)}; state ${await rebuildState(db)}`;
      assert.deepEqual({ ...second, handled: 0 }, { name: "sales", handled: 0, resumed: true, differences: 0, swapped: false }, afterSecond);
      assert.ok(second.handled >= 2 && second.handled <= 10, `2 batches of at most 5 handled ${second.handled}`);

      lines.length = 0;
      const finished = await rebuildSalesView(db, { batchSize: 5, log });
      assert.deepEqual(finished, { name: "sales", handled: 45 - first.handled - second.handled, resumed: true, differences: 0, swapped: true }, `last run ${JSON.stringify(finished)}; ${afterSecond}`);
      assert.match(lines[0] ?? "", /resuming the rebuild from position/);
      assert.deepEqual(await viewRows(db), expected);
      assert.ok(await shadowIsEmpty(db), "no shadow state is left behind");

      const clean = await rebuildSalesView(db, {});
      assert.deepEqual(clean, { name: "sales", handled: 45, resumed: false, differences: 0, swapped: true });
      assert.deepEqual(await viewRows(db), expected);
    });

    test("a corrupted live row is reported by a check (which changes nothing) and put right by a rebuild", async (t) => {
      const db = await ordersDatabase(t, engine, options);
      if (!db) return;
      await writeOrder(db, { lines: [tea(2)], ending: "confirmed", at: at(H10, 1) });
      await writeOrder(db, { lines: [mug(1)], ending: "failed", at: at(H10, 2) });
      const live = createSalesProjection();
      await untilProjected(db, () => live.catchUp(db));
      const expected = await viewRows(db);

      await db(LIVE_SALES.products).where({ product_id: "MW-TEA-TIN" }).update({ units: 99 });
      await db(LIVE_SALES.outcomes).where({ outcome: "failed" }).delete();
      const corrupted = await viewRows(db);

      assert.deepEqual(await rebuildSalesView(db, { check: true }), { name: "sales", handled: 8, resumed: false, differences: 2, swapped: false });
      assert.deepEqual(await viewRows(db), corrupted, "a check only reports");
      assert.ok(await shadowIsEmpty(db));

      assert.deepEqual(await rebuildSalesView(db, {}), { name: "sales", handled: 8, resumed: false, differences: 2, swapped: true });
      assert.deepEqual(await viewRows(db), expected);
      assert.deepEqual((await rebuildSalesView(db, { check: true })).differences, 0);

      // The live projection carries on from the swapped checkpoint: nothing twice, nothing missed.
      await writeOrder(db, { lines: [tea(1)], ending: "confirmed", at: at(H10, 3) });
      await untilProjected(db, () => live.catchUp(db));
      assert.deepEqual((await viewRows(db)).products, ["2026-03-01T10:00:00.000Z MW-TEA-TIN EUR units=3 revenue=3750"]);
    });

    test("bad rebuild options are refused with the option named", async (t) => {
      const db = await ordersDatabase(t, engine, options);
      if (!db) return;
      await assert.rejects(rebuildSalesView(db, { maxBatches: 0 }), /maxBatches must be a whole number >= 1/);
    });
  });
}
