import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { fieldRefusal } from "@meshwork/testing";
import { checkAuthorization, checkOrderId, existingPaymentOutcome, IdempotencyConflictError, requestFingerprint, type PaymentRecord } from "./payments.js";

const valid = { orderId: "order-1", amount: { currencyCode: "EUR", amountMinor: 4500n }, cardToken: "tok_visa_4242" };

const refusal = fieldRefusal;

describe("authorization request rules", () => {
  test("a valid request comes back with the amount as a number", () => {
    assert.deepEqual(checkAuthorization(valid), { orderId: "order-1", amountMinor: 4500, currency: "EUR", cardToken: "tok_visa_4242" });
    assert.equal(checkAuthorization({ ...valid, amount: { currencyCode: "JPY", amountMinor: 10n ** 12n } }).amountMinor, 1e12);
  });

  test("order ids must be 1 to 64 letters, digits, '-' or '_'", () => {
    assert.equal(checkOrderId("A-z_09"), "A-z_09");
    assert.deepEqual(
      refusal(() => checkOrderId("")),
      { field: "order_id", problem: "is required" },
    );
    assert.equal(refusal(() => checkOrderId("x".repeat(65))).field, "order_id");
    assert.equal(refusal(() => checkOrderId("o 1")).field, "order_id");
    assert.equal(refusal(() => checkOrderId("o-1;drop table payments")).field, "order_id");
  });

  test("the amount must be present, in a 3-letter upper-case currency, positive and at most 10^12 minor units", () => {
    assert.deepEqual(
      refusal(() => checkAuthorization({ ...valid, amount: undefined })),
      { field: "amount", problem: "is required" },
    );
    for (const currencyCode of ["", "eur", "EURO", "E1R"]) {
      assert.equal(refusal(() => checkAuthorization({ ...valid, amount: { currencyCode, amountMinor: 1n } })).field, "amount.currency_code");
    }
    assert.deepEqual(
      refusal(() => checkAuthorization({ ...valid, amount: { currencyCode: "EUR", amountMinor: 0n } })),
      {
        field: "amount.amount_minor",
        problem: "must be positive",
      },
    );
    assert.equal(refusal(() => checkAuthorization({ ...valid, amount: { currencyCode: "EUR", amountMinor: -5n } })).field, "amount.amount_minor");
    assert.equal(refusal(() => checkAuthorization({ ...valid, amount: { currencyCode: "EUR", amountMinor: 10n ** 12n + 1n } })).field, "amount.amount_minor");
  });

  test("the card token must be 1 to 64 printable characters, and a refusal never repeats it", () => {
    assert.equal(refusal(() => checkAuthorization({ ...valid, cardToken: "" })).field, "card_token");
    const secretish = `tok_${"9".repeat(70)}`;
    const long = refusal(() => checkAuthorization({ ...valid, cardToken: secretish }));
    assert.equal(long.field, "card_token");
    assert.ok(!long.problem.includes("9999"));
    assert.equal(refusal(() => checkAuthorization({ ...valid, cardToken: "tok\nvisa" })).field, "card_token");
    assert.equal(refusal(() => checkAuthorization({ ...valid, cardToken: "tok visa" })).field, "card_token");
    assert.equal(refusal(() => checkAuthorization({ ...valid, cardToken: "tok_é" })).field, "card_token");
  });

  test("the first broken field is the one named, in request order", () => {
    assert.equal(refusal(() => checkAuthorization({ orderId: "", amount: undefined, cardToken: "" })).field, "order_id");
    assert.equal(refusal(() => checkAuthorization({ ...valid, amount: undefined, cardToken: "" })).field, "amount");
  });
});

describe("request fingerprint", () => {
  const request = checkAuthorization(valid);

  test("the same request gives the same fingerprint; any field changed gives another", () => {
    const fingerprint = requestFingerprint(request);
    assert.match(fingerprint, /^[0-9a-f]{64}$/);
    assert.equal(requestFingerprint({ ...request }), fingerprint);
    const variants = [
      { ...request, orderId: "order-2" },
      { ...request, amountMinor: 4501 },
      { ...request, currency: "USD" },
      { ...request, cardToken: "tok_visa_4243" },
    ];
    const others = variants.map(requestFingerprint);
    assert.equal(new Set([fingerprint, ...others]).size, 5);
  });

  test("fields cannot shift into one another (no ambiguous concatenation)", () => {
    assert.notEqual(requestFingerprint({ ...request, orderId: "a", currency: "EUR", cardToken: "b" }), requestFingerprint({ ...request, orderId: "ab", currency: "EUR", cardToken: "" }));
  });

  test("the fingerprint does not contain the card token", () => {
    assert.ok(!requestFingerprint(request).includes(request.cardToken));
  });
});

describe("what an authorization does about an existing payment", () => {
  const at = new Date("2030-01-01T00:00:00Z");
  const base: PaymentRecord = {
    id: "p1",
    orderId: "order-1",
    status: "authorized",
    request: { amountMinor: 4500, currency: "EUR", fingerprint: "f1" },
    declineReason: "",
    claim: undefined,
    createdAt: at,
    updatedAt: at,
  };

  test("a final payment of the same request is returned; a pending one is waited for", () => {
    assert.equal(existingPaymentOutcome(base, "f1"), "final");
    assert.equal(existingPaymentOutcome({ ...base, status: "declined", declineReason: "insufficient funds" }, "f1"), "final");
    assert.equal(existingPaymentOutcome({ ...base, status: "voided" }, "f1"), "final");
    assert.equal(existingPaymentOutcome({ ...base, status: "pending", claim: { id: "c", expiresAt: at } }, "f1"), "in-progress");
  });

  test("a different request for the same order is refused, whatever the state", () => {
    for (const status of ["authorized", "declined", "voided", "pending"] as const) {
      assert.throws(() => existingPaymentOutcome({ ...base, status }, "f2"), IdempotencyConflictError);
    }
  });

  test("a void recorded before any authorization answers every late authorization", () => {
    assert.equal(existingPaymentOutcome({ ...base, status: "voided", request: undefined }, "anything"), "final");
  });
});
