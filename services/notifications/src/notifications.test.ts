import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { fieldRefusal } from "@meshwork/testing";
import { eventOf } from "../test/support.js";
import { checkPageSize, decodePageToken, encodePageToken, formatMoney, notificationsFor } from "./notifications.js";

const fieldOf = (work: () => unknown): string => fieldRefusal(work).field;

describe("notification rules", () => {
  test("each order status a shopper cares about makes one notification for the order's user", () => {
    const placed = notificationsFor(eventOf({ status: "placed", orderId: "o-1", userId: "u-9", itemCount: 3 }));
    assert.deepEqual(
      placed.map(({ userId, orderId, subject }) => ({ userId, orderId, subject })),
      [{ userId: "u-9", orderId: "o-1", subject: "Order received" }],
    );
    assert.match(placed[0]!.body, /order o-1 \(3 items\)/);

    const [confirmed] = notificationsFor(eventOf({ status: "confirmed", orderId: "o-1", itemCount: 1, total: { amountMinor: 9000n, currency: "EUR" } }));
    assert.equal(confirmed?.subject, "Order confirmed");
    assert.equal(confirmed?.body, "Your order o-1 (1 item) is confirmed. Total: EUR 90.00.");

    const [rejected] = notificationsFor(eventOf({ status: "rejected", reason: "card declined by the issuer" }));
    assert.equal(rejected?.subject, "Order not accepted");
    assert.match(rejected!.body, /: card declined by the issuer\. Nothing was charged\./);

    const [failed] = notificationsFor(eventOf({ status: "failed", reason: "" }));
    assert.equal(failed?.subject, "Order not accepted");
    assert.match(failed!.body, /could not be completed: no reason was given/);
  });

  test("a status this service does not know makes no notification", () => {
    assert.deepEqual(notificationsFor(eventOf({ status: undefined })), []);
  });

  test("a confirmed order without a total still reads well", () => {
    assert.equal(notificationsFor(eventOf({ status: "confirmed", orderId: "o-2", itemCount: 2, total: undefined }))[0]?.body, "Your order o-2 (2 items) is confirmed.");
  });

  test("money is shown in the currency's own decimals, without float rounding", () => {
    assert.equal(formatMoney({ amountMinor: 9000n, currency: "EUR" }), "EUR 90.00");
    assert.equal(formatMoney({ amountMinor: 5n, currency: "EUR" }), "EUR 0.05");
    assert.equal(formatMoney({ amountMinor: 1500n, currency: "JPY" }), "JPY 1500");
    assert.equal(formatMoney({ amountMinor: 1234n, currency: "BHD" }), "BHD 1.234");
    assert.equal(formatMoney({ amountMinor: 900719925474099312n, currency: "USD" }), "USD 9007199254740993.12");
    assert.equal(formatMoney({ amountMinor: -250n, currency: "EUR" }), "EUR -2.50");
    assert.equal(formatMoney({ amountMinor: 100n, currency: "ZZZ" }), "ZZZ 1.00", "an unknown code gets two decimals");
  });

  test("page size 0 means the default; negative or above 100 is refused naming page_size", () => {
    assert.equal(checkPageSize(0), 20);
    assert.equal(checkPageSize(100), 100);
    assert.equal(
      fieldOf(() => checkPageSize(101)),
      "page_size",
    );
    assert.equal(
      fieldOf(() => checkPageSize(-1)),
      "page_size",
    );
  });

  test("a page token round-trips its position; anything else is refused naming page_token", () => {
    assert.equal(decodePageToken(encodePageToken(42)), 42);
    assert.equal(decodePageToken(""), undefined);
    for (const forged of [
      "forged",
      "%%%",
      Buffer.from("[1]").toString("base64url"),
      Buffer.from('["n1",-4]').toString("base64url"),
      Buffer.from('["o1",4]').toString("base64url"),
      Buffer.from('["n1",1.5]').toString("base64url"),
    ]) {
      assert.equal(
        fieldOf(() => decodePageToken(forged)),
        "page_token",
        forged,
      );
    }
  });
});
