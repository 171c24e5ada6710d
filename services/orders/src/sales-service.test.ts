/**
 * shop.orders.v2.SalesService called directly, with no network: the real
 * handlers over the real sales view on in-memory PGlite, fed by the real
 * projection.
 */
import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { GetSalesReportRequestSchema } from "@meshwork/contracts/shop/orders/v2/sales";
import { bearerToken, Code, isRpcError, type CallContext, type Knex } from "@meshwork/platform";
import { createTestCallContext, rejectsWith } from "@meshwork/testing";
import { untilProjected, writeOrder } from "../test/sales-view.support.js";
import { ordersDatabase } from "../test/support.js";
import { checkSalesRange } from "./sales-report.js";
import { createSalesHandlers } from "./sales-service.js";
import { createSalesProjection, readSalesReport } from "./sales-view.js";

const authenticate = async (context: CallContext) => ({ userId: bearerToken(context), email: "" });
const signedIn = createTestCallContext({ headers: { authorization: "Bearer u1" } });
const NOW = new Date("2026-03-01T12:34:56Z");
const handlers = (db: Knex) => createSalesHandlers({ authenticate, readReport: (range) => readSalesReport(db, range), now: () => NOW });
const request = (init: { start?: Date; end?: Date; startSeconds?: bigint; endNanos?: number } = {}) =>
  create(GetSalesReportRequestSchema, {
    ...(init.start ? { startTime: timestampFromDate(init.start) } : {}),
    ...(init.startSeconds !== undefined ? { startTime: { seconds: init.startSeconds, nanos: 0 } } : {}),
    ...(init.end ? { endTime: timestampFromDate(init.end) } : {}),
    ...(init.endNanos !== undefined ? { endTime: { seconds: 1n, nanos: init.endNanos } } : {}),
  });

describe("sales report API", () => {
  test("the report of the last 24 hours has the hourly sales, the outcomes and how fresh it is", async (t) => {
    const db = (await ordersDatabase(t, "PGlite"))!;
    await writeOrder(db, { lines: [{ productId: "MW-TEA-TIN", quantity: 2, unitPriceMinor: 1250, currency: "EUR" }], ending: "confirmed", at: new Date("2026-03-01T12:10:00Z") });
    await writeOrder(db, { lines: [{ productId: "MW-TEA-TIN", quantity: 1, unitPriceMinor: 1250, currency: "EUR" }], ending: "rejected", at: new Date("2026-02-28T13:10:00Z") });
    // Older than 24 hours: outside the default range.
    await writeOrder(db, { lines: [{ productId: "MW-MUG", quantity: 1, unitPriceMinor: 900, currency: "EUR" }], ending: "confirmed", at: new Date("2026-02-28T12:59:00Z") });
    const reader = createSalesProjection();
    await untilProjected(db, () => reader.catchUp(db));

    const answer = await handlers(db).getSalesReport(request(), signedIn);
    assert.equal(answer.startTime?.seconds, BigInt(Date.parse("2026-02-28T13:00:00Z") / 1000));
    assert.equal(answer.endTime?.seconds, BigInt(Date.parse("2026-03-01T13:00:00Z") / 1000));
    assert.deepEqual(
      answer.products?.map((row) => [row.productId, row.units, row.revenue?.currencyCode, row.revenue?.amountMinor]),
      [["MW-TEA-TIN", 2n, "EUR", 2500n]],
    );
    assert.deepEqual(answer.outcomes, { confirmed: 1n, rejected: 1n, failed: 0n });
    assert.equal(answer.hourlyOutcomes?.length, 2);
    assert.equal(answer.freshness?.pendingEvents, 0n);
    assert.ok(answer.freshness?.lastEventTime && answer.freshness.updateTime && answer.freshness.readTime);
  });

  test("a caller without a token is refused before anything is read", async (t) => {
    const db = (await ordersDatabase(t, "PGlite"))!;
    const error = await handlers(db)
      .getSalesReport(request(), createTestCallContext())
      .then(
        () => undefined,
        (caught: unknown) => caught,
      );
    assert.ok(isRpcError(error, Code.UNAUTHENTICATED), String(error));
  });

  test("an inverted range, a range over 31 days and malformed timestamps are INVALID_ARGUMENT naming the field", async (t) => {
    const db = (await ordersDatabase(t, "PGlite"))!;
    const api = handlers(db);
    await rejectsWith(
      api.getSalesReport(request({ start: new Date("2026-03-01T10:00:00Z"), end: new Date("2026-03-01T09:00:00Z") }), signedIn),
      Code.INVALID_ARGUMENT,
      /^start_time: must be before end_time/,
    );
    await rejectsWith(
      api.getSalesReport(request({ start: new Date("2026-01-01T00:00:00Z"), end: new Date("2026-03-01T00:00:00Z") }), signedIn),
      Code.INVALID_ARGUMENT,
      /^start_time: the range may cover at most 744 hours/,
    );
    await rejectsWith(api.getSalesReport(request({ startSeconds: 253_402_300_800n }), signedIn), Code.INVALID_ARGUMENT, /^start_time: must be a timestamp from 0001-01-01/);
    await rejectsWith(api.getSalesReport(request({ endNanos: -1 }), signedIn), Code.INVALID_ARGUMENT, /^end_time: nanos must be from 0 to 999999999/);
    await rejectsWith(api.getSalesReport(request({ start: new Date("2026-03-02T00:00:00Z") }), signedIn), Code.INVALID_ARGUMENT, /^start_time: must be before the end of the current hour/);
  });
});

describe("sales report range", () => {
  test("start rounds down and end rounds up to whole hours; the default is the 24 hours up to the end of the current hour", () => {
    const ts = (iso: string) => ({ seconds: BigInt(Date.parse(iso) / 1000), nanos: 0 });
    assert.deepEqual(checkSalesRange(ts("2026-03-01T10:30:00Z"), ts("2026-03-01T11:00:01Z"), NOW), { from: new Date("2026-03-01T10:00:00Z"), to: new Date("2026-03-01T12:00:00Z") });
    assert.deepEqual(checkSalesRange(undefined, undefined, NOW), { from: new Date("2026-02-28T13:00:00Z"), to: new Date("2026-03-01T13:00:00Z") });
    assert.deepEqual(
      checkSalesRange(undefined, undefined, new Date("2026-03-01T13:00:00Z")),
      { from: new Date("2026-02-28T14:00:00Z"), to: new Date("2026-03-01T14:00:00Z") },
      "on the hour: that hour is included",
    );
    assert.deepEqual(checkSalesRange(ts("2026-02-01T00:00:00Z"), ts("2026-03-04T00:00:00Z"), NOW).from, new Date("2026-02-01T00:00:00Z"), "exactly 31 days is allowed");
  });
});
