import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { createSilentLogger, type Logger } from "@meshwork/platform";
import { createLogCapture } from "@meshwork/testing";
import { createMemoryPaymentStore } from "./adapters/payment-store.memory.js";
import { createAuthorizer, type AuthorizeCaller } from "./authorize.js";
import { AuthorizationInProgressError, IdempotencyConflictError, ProcessorUnavailableError, requestFingerprint, type AuthorizationRequest } from "./payments.js";
import type { PaymentProcessor, PaymentStore } from "./ports.js";
import { countingProcessor, scriptedProcessor } from "../test/support.js";

const request = (overrides: Partial<AuthorizationRequest> = {}): AuthorizationRequest => ({
  orderId: "order-1",
  amountMinor: 4500,
  currency: "EUR",
  cardToken: "tok_visa",
  ...overrides,
});

function caller(options: { signal?: AbortSignal; timeoutMs?: number; log?: Logger } = {}): AuthorizeCaller {
  const deadline = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs;
  return {
    log: options.log ?? createSilentLogger(),
    signal: options.signal ?? new AbortController().signal,
    timeoutMs: () => (deadline === undefined ? undefined : Math.max(0, deadline - Date.now())),
  };
}

function authorizer(options: { store?: PaymentStore; processor?: PaymentProcessor; processorTimeoutMs?: number; pendingLeaseMs?: number } = {}) {
  const store = options.store ?? createMemoryPaymentStore();
  const use = createAuthorizer({
    store,
    processor: options.processor ?? countingProcessor(),
    processorTimeoutMs: options.processorTimeoutMs ?? 5_000,
    pendingLeaseMs: options.pendingLeaseMs ?? 30_000,
  });
  return { store, ...use };
}

describe("the authorize use case", () => {
  test("the processor's answer is recorded: approved is authorized, refused is declined with its reason", async () => {
    const payments = authorizer();
    const approved = await payments.authorize(request(), caller());
    assert.equal(approved.status, "authorized");
    assert.deepEqual(approved.request, { amountMinor: 4500, currency: "EUR", fingerprint: requestFingerprint(request()) });
    const declined = await payments.authorize(request({ orderId: "order-2", cardToken: "tok_declined" }), caller());
    assert.equal(declined.status, "declined");
    assert.equal(declined.declineReason, "card declined by the issuer");
    assert.deepEqual(await payments.store.get("order-2"), declined);
  });

  test("asked again for a final payment, it returns the recorded one without asking the processor", async () => {
    const processor = countingProcessor();
    const payments = authorizer({ processor });
    const first = await payments.authorize(request(), caller());
    assert.deepEqual(await payments.authorize(request(), caller()), first);
    assert.equal(processor.calls, 1);
  });

  test("another request for an order that has a payment is an IdempotencyConflictError", async () => {
    const payments = authorizer();
    await payments.authorize(request(), caller());
    await assert.rejects(payments.authorize(request({ cardToken: "tok_other" }), caller()), IdempotencyConflictError);
  });

  test("identical authorizations in flight at once share one processor call", async () => {
    const processor = scriptedProcessor();
    const payments = authorizer({ processor });
    const all = Promise.all([1, 2, 3].map(() => payments.authorize(request(), caller())));
    (await processor.next()).answer({ approved: true });
    const results = await all;
    assert.equal(processor.calls(), 1);
    assert.equal(new Set(results.map((payment) => payment.id)).size, 1);
  });

  test("a processor past its timeout is told to stop; the claim is released, so the same request asks again at once", async () => {
    const processor = scriptedProcessor();
    const payments = authorizer({ processor, processorTimeoutMs: 20 });
    await assert.rejects(payments.authorize(request(), caller()), (error: unknown) => error instanceof ProcessorUnavailableError && /no answer within 20 ms/.test(error.message));
    assert.ok((await processor.next()).signal.aborted);
    assert.equal((await payments.store.get("order-1"))?.status, "pending");
    const retry = payments.authorize(request(), caller());
    (await processor.next()).answer({ approved: true });
    assert.equal((await retry).status, "authorized");
  });

  test("when the claim cannot be released, that is logged and the caller still gets the processor's failure", async () => {
    const logs = createLogCapture({ service: "payments", level: "info" });
    const store = createMemoryPaymentStore();
    const stuck: PaymentStore = { ...store, release: () => Promise.reject(new Error("database gone")) };
    const payments = authorizer({ store: stuck, processor: countingProcessor({ value: 1 }) });
    await assert.rejects(payments.authorize(request(), caller({ log: logs.log })), ProcessorUnavailableError);
    const logged = logs.entries.find((entry) => entry.msg === "could not release the claim; it expires with its lease");
    assert.equal(logged?.orderId, "order-1");
  });

  test("while another instance holds the claim it waits, and returns that instance's outcome", async () => {
    const store = createMemoryPaymentStore();
    const processor = scriptedProcessor();
    const instanceA = authorizer({ store, processor });
    const instanceB = authorizer({ store, processor });
    const viaA = instanceA.authorize(request(), caller());
    const call = await processor.next();
    const viaB = instanceB.authorize(request(), caller());
    call.answer({ approved: false, reason: "insufficient funds" });
    const [a, b] = await Promise.all([viaA, viaB]);
    assert.deepEqual(b, a);
    assert.equal(b.status, "declined");
    assert.equal(processor.calls(), 1);
  });

  test("a claim held past the caller's deadline is an AuthorizationInProgressError, and the processor is not asked", async () => {
    const store = createMemoryPaymentStore();
    const processor = countingProcessor();
    const held = await store.claim({ orderId: "order-1", amountMinor: 4500, currency: "EUR", fingerprint: requestFingerprint(request()), leaseMs: 30_000 });
    assert.equal(held.claimed, true);
    const payments = authorizer({ store, processor });
    await assert.rejects(payments.authorize(request(), caller({ timeoutMs: 30 })), AuthorizationInProgressError);
    assert.equal(processor.calls, 0);
  });

  test("a caller that stops waiting gets its abort reason; the attempt goes on, and settle() waits until its outcome is recorded", async () => {
    const processor = scriptedProcessor();
    const store = createMemoryPaymentStore();
    let recorded: string | undefined;
    const watched: PaymentStore = {
      ...store,
      async finish(...args) {
        const payment = await store.finish(...args);
        recorded = payment.status;
        return payment;
      },
    };
    const payments = authorizer({ store: watched, processor });
    const controller = new AbortController();
    const first = payments.authorize(request(), caller({ signal: controller.signal }));
    const call = await processor.next();
    const reason = new Error("caller gone");
    controller.abort(reason);
    await assert.rejects(first, (error: unknown) => error === reason);
    assert.equal(call.signal.aborted, false, "the processor call goes on");
    let settled = false;
    const settling = payments.settle().then(() => {
      settled = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(settled, false, "settle() waits while the processor is asked");
    call.answer({ approved: true });
    await settling;
    assert.equal(recorded, "authorized", "the outcome was recorded before settle() resolved");
  });

  test("a void that lands while the processor is asked wins: the answer is not recorded and the voided payment is returned", async () => {
    const logs = createLogCapture({ service: "payments", level: "info" });
    const processor = scriptedProcessor();
    const payments = authorizer({ processor });
    const authorizing = payments.authorize(request(), caller({ log: logs.log }));
    const call = await processor.next();
    await payments.store.void("order-1");
    call.answer({ approved: true });
    assert.equal((await authorizing).status, "voided");
    assert.ok(logs.entries.some((entry) => entry.msg === "order voided while the processor was asked; its answer is not recorded"));
  });
});
