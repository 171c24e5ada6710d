import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { describeError, describeRejection } from "./errors.js";

const error = (code: Code, message: string, headers: Record<string, string> = {}) => new ConnectError(message, code, new Headers(headers));

describe("errors as a shopper reads them", () => {
  test("a rate limit says how many seconds to wait, from the gateway's retry-after header", () => {
    const humane = describeError(error(Code.ResourceExhausted, "rate limit exceeded for this user: retry after 2500 ms", { "retry-after": "3" }));
    assert.equal(humane.retryAfterSeconds, 3);
    assert.match(humane.detail ?? "", /try again in 3 seconds/);
    assert.doesNotMatch(`${humane.title} ${humane.detail}`, /resource_exhausted|\b8\b/i);
  });

  test("without the header, the wait is read from retry-after-ms, then from the message", () => {
    assert.equal(describeError(error(Code.ResourceExhausted, "slow down", { "retry-after-ms": "1200" })).retryAfterSeconds, 2);
    assert.equal(describeError(error(Code.ResourceExhausted, "rate limit exceeded for this address: retry after 400 ms")).retryAfterSeconds, 1);
  });

  test("a refused token means the session expired and offers to sign in, except on the sign-in form, where it means wrong credentials", () => {
    const expired = describeError(error(Code.Unauthenticated, "token expired"));
    assert.equal(expired.title, "Your session has expired.");
    assert.equal(expired.signInAgain, true);
    assert.match(describeError(error(Code.Unauthenticated, "bad credentials"), "sign-in").title, /do not match an account/);
  });

  test("an invalid field is named in words, from x-invalid-field", () => {
    const humane = describeError(error(Code.InvalidArgument, "items[0].quantity: must be 1 to 1000", { "x-invalid-field": "items[0].quantity" }));
    assert.equal(humane.title, "Please check the quantity.");
  });

  test("out of stock, a taken email, an unreachable shop and an unknown failure each get their own sentence, never a code or a stack", () => {
    assert.equal(describeError(error(Code.FailedPrecondition, "out of stock: MW-RAIN-JACKET")).title, "Some items are out of stock.");
    assert.equal(describeError(error(Code.AlreadyExists, "email taken"), "sign-up").title, "An account with this email already exists.");
    assert.equal(describeError(error(Code.Unavailable, "connect ECONNREFUSED")).title, "The shop is not reachable right now.");
    const internal = describeError(new Error("TypeError: x is undefined\n    at foo (app.js:1:2)"));
    assert.equal(internal.title, "Something went wrong on our side.");
    assert.doesNotMatch(JSON.stringify(internal), /TypeError|app\.js/);
  });

  test("an order's rejection reason becomes a heading: declined cards and missing stock are told apart", () => {
    assert.equal(describeRejection("card declined by the issuer"), "Your payment was declined.");
    assert.equal(describeRejection("insufficient funds"), "Your payment was declined.");
    assert.equal(describeRejection("out of stock: MW-RAIN-JACKET"), "Some items are out of stock.");
    assert.equal(describeRejection("catalog stayed unavailable"), "Your order could not be completed.");
  });
});
