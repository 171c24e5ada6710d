import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { create } from "@bufbuild/protobuf";
import { AuthorizePaymentRequestSchema, PaymentStatus, VoidPaymentRequestSchema } from "@meshwork/contracts/shop/payments/v1/payments";
import { Code, createLogger, isRpcError, type CallContext } from "@meshwork/platform";
import { createTestCallContext, rejectsWith } from "@meshwork/testing";
import { createMemoryPaymentStore } from "./adapters/payment-store.memory.js";
import { checkAuthorization, ProcessorUnavailableError, requestFingerprint } from "./payments.js";
import type { PaymentProcessor, PaymentStore } from "./ports.js";
import { createPaymentService } from "./service.js";
import { countingProcessor, scriptedProcessor } from "../test/support.js";

const context = createTestCallContext();

function service(options: { store?: PaymentStore; processor?: PaymentProcessor; processorTimeoutMs?: number; pendingLeaseMs?: number } = {}) {
  const store = options.store ?? createMemoryPaymentStore();
  const processor = options.processor ?? countingProcessor();
  const parts = createPaymentService({
    store,
    processor,
    processorTimeoutMs: options.processorTimeoutMs ?? 5_000,
    pendingLeaseMs: options.pendingLeaseMs ?? 30_000,
  });
  return { store, ...parts.handlers, settle: parts.settle };
}

const authorizeRequest = (overrides: { orderId?: string; currencyCode?: string; amountMinor?: bigint; cardToken?: string } = {}) =>
  create(AuthorizePaymentRequestSchema, {
    orderId: overrides.orderId ?? "order-1",
    amount: { currencyCode: overrides.currencyCode ?? "EUR", amountMinor: overrides.amountMinor ?? 4500n },
    cardToken: overrides.cardToken ?? "tok_visa",
  });

const voidRequest = (orderId: string) => create(VoidPaymentRequestSchema, { orderId });

const rejection = async (work: Promise<unknown>): Promise<unknown> =>
  work.then(
    () => assert.fail("expected an error"),
    (caught: unknown) => caught,
  );

const statusOf = (response: { payment?: { status?: PaymentStatus } | undefined }): PaymentStatus | undefined => response.payment?.status;

describe("payment RPC handlers", () => {
  test("an ordinary card is authorized for the amount asked", async () => {
    const payments = service();
    const { payment } = await payments.authorizePayment(authorizeRequest(), context);
    assert.equal(payment?.status, PaymentStatus.AUTHORIZED);
    assert.equal(payment?.orderId, "order-1");
    assert.deepEqual(payment?.amount, { currencyCode: "EUR", amountMinor: 4500n });
    assert.equal(payment?.declineReason, "");
    assert.ok(payment?.id);
    assert.ok(payment?.createTime && payment.updateTime);
  });

  test("the documented test tokens are declined with a shopper-readable reason, as a result and not an error", async () => {
    const payments = service();
    const declined = await payments.authorizePayment(authorizeRequest({ orderId: "o-declined", cardToken: "tok_declined" }), context);
    assert.equal(statusOf(declined), PaymentStatus.DECLINED);
    assert.equal(declined.payment?.declineReason, "card declined by the issuer");
    const poor = await payments.authorizePayment(authorizeRequest({ orderId: "o-poor", cardToken: "tok_insufficient_funds" }), context);
    assert.equal(statusOf(poor), PaymentStatus.DECLINED);
    assert.equal(poor.payment?.declineReason, "insufficient funds");
  });

  test("the same order with the same request returns the first result without asking the processor again", async () => {
    const processor = countingProcessor();
    const payments = service({ processor });
    const first = await payments.authorizePayment(authorizeRequest(), context);
    const again = await payments.authorizePayment(authorizeRequest(), context);
    assert.deepEqual(again, first);
    const declined = await payments.authorizePayment(authorizeRequest({ orderId: "o-2", cardToken: "tok_declined" }), context);
    assert.deepEqual(await payments.authorizePayment(authorizeRequest({ orderId: "o-2", cardToken: "tok_declined" }), context), declined);
    assert.equal(processor.calls, 2);
  });

  test("the same order with another amount, currency or card is FAILED_PRECONDITION and the payment stays as it was", async () => {
    const processor = countingProcessor();
    const payments = service({ processor });
    const first = await payments.authorizePayment(authorizeRequest(), context);
    for (const changed of [{ amountMinor: 4501n }, { currencyCode: "USD" }, { cardToken: "tok_other" }]) {
      await rejectsWith(payments.authorizePayment(authorizeRequest(changed), context), Code.FAILED_PRECONDITION, /order order-1 already has a payment for a different request/);
    }
    assert.deepEqual(await payments.authorizePayment(authorizeRequest(), context), first);
    assert.equal(processor.calls, 1);
  });

  test("10 identical authorizations at once ask the processor once and all get the same payment", async () => {
    const processor = scriptedProcessor();
    const payments = service({ processor });
    const all = Promise.all(Array.from({ length: 10 }, () => payments.authorizePayment(authorizeRequest(), context)));
    (await processor.next()).answer({ approved: true });
    const results = await all;
    assert.equal(processor.calls(), 1);
    assert.equal(new Set(results.map((result) => result.payment?.id)).size, 1);
    assert.ok(results.every((result) => statusOf(result) === PaymentStatus.AUTHORIZED));
  });

  test("a transient processor failure is UNAVAILABLE and records nothing final: a retry asks again, another request is still refused", async () => {
    const rate = { value: 1 };
    const processor = countingProcessor(rate);
    const payments = service({ processor });
    await rejectsWith(payments.authorizePayment(authorizeRequest(), context), Code.UNAVAILABLE, /payment processor is unavailable; retry/);
    assert.equal((await payments.store.get("order-1"))?.status, "pending");
    await rejectsWith(payments.authorizePayment(authorizeRequest({ amountMinor: 1n }), context), Code.FAILED_PRECONDITION, /different request/);
    rate.value = 0;
    assert.equal(statusOf(await payments.authorizePayment(authorizeRequest(), context)), PaymentStatus.AUTHORIZED);
    assert.equal(processor.calls, 2);
  });

  test("a processor that does not answer within the timeout is UNAVAILABLE, and the retry may ask again at once", async () => {
    const processor = scriptedProcessor();
    const payments = service({ processor, processorTimeoutMs: 20 });
    await rejectsWith(payments.authorizePayment(authorizeRequest(), context), Code.UNAVAILABLE, /retry/);
    assert.ok((await processor.next()).signal.aborted, "the processor was told to stop");
    const retry = payments.authorizePayment(authorizeRequest(), context);
    (await processor.next()).answer({ approved: true });
    assert.equal(statusOf(await retry), PaymentStatus.AUTHORIZED);
  });

  test("a caller that gives up while the processor is asked stops waiting, but the answer is recorded for its retry", async () => {
    const processor = scriptedProcessor();
    const payments = service({ processor });
    const controller = new AbortController();
    const first = payments.authorizePayment(authorizeRequest(), createTestCallContext({ signal: controller.signal }));
    const call = await processor.next();
    controller.abort();
    await rejectsWith(first, Code.CANCELLED, /cancelled/);
    assert.equal(call.signal.aborted, false, "the processor call goes on");
    call.answer({ approved: false, reason: "insufficient funds" });
    await payments.settle();
    const retry = await payments.authorizePayment(authorizeRequest(), context);
    assert.equal(statusOf(retry), PaymentStatus.DECLINED);
    assert.equal(processor.calls(), 1);
  });

  test("void: AUTHORIZED becomes VOIDED, twice is the same result, and a later identical authorization answers VOIDED", async () => {
    const processor = countingProcessor();
    const payments = service({ processor });
    const authorized = await payments.authorizePayment(authorizeRequest(), context);
    const voided = await payments.voidPayment(voidRequest("order-1"), context);
    assert.equal(voided.payment?.status, PaymentStatus.VOIDED);
    assert.equal(voided.payment?.id, authorized.payment?.id);
    assert.deepEqual(voided.payment?.amount, authorized.payment?.amount);
    assert.deepEqual(await payments.voidPayment(voidRequest("order-1"), context), voided);
    assert.equal(statusOf(await payments.authorizePayment(authorizeRequest(), context)), PaymentStatus.VOIDED);
    assert.equal(processor.calls, 1);
  });

  test("void of a declined payment leaves it DECLINED", async () => {
    const payments = service();
    await payments.authorizePayment(authorizeRequest({ cardToken: "tok_declined" }), context);
    const result = await payments.voidPayment(voidRequest("order-1"), context);
    assert.equal(result.payment?.status, PaymentStatus.DECLINED);
    assert.equal(result.payment?.declineReason, "card declined by the issuer");
  });

  test("void of an unknown order records a tombstone: a late authorization answers VOIDED without asking the processor", async () => {
    const processor = countingProcessor();
    const payments = service({ processor });
    const tombstone = await payments.voidPayment(voidRequest("order-late"), context);
    assert.equal(tombstone.payment?.status, PaymentStatus.VOIDED);
    assert.equal(tombstone.payment?.amount, undefined);
    const late = await payments.authorizePayment(authorizeRequest({ orderId: "order-late" }), context);
    assert.equal(statusOf(late), PaymentStatus.VOIDED);
    assert.equal(late.payment?.id, tombstone.payment?.id);
    assert.equal(processor.calls, 0);
    assert.deepEqual(await payments.voidPayment(voidRequest("order-late"), context), tombstone);
  });

  test("a void that arrives while the processor is asked wins: the authorization answers VOIDED", async () => {
    const processor = scriptedProcessor();
    const payments = service({ processor });
    const authorizing = payments.authorizePayment(authorizeRequest(), context);
    const call = await processor.next();
    const voided = await payments.voidPayment(voidRequest("order-1"), context);
    assert.equal(voided.payment?.status, PaymentStatus.VOIDED);
    call.answer({ approved: true });
    assert.equal(statusOf(await authorizing), PaymentStatus.VOIDED);
    assert.equal((await payments.store.get("order-1"))?.status, "voided");
  });

  test("when another instance holds the claim, the caller waits for its outcome instead of asking the processor", async () => {
    const store = createMemoryPaymentStore();
    const processor = scriptedProcessor();
    const instanceA = service({ store, processor });
    const instanceB = service({ store, processor });
    const viaA = instanceA.authorizePayment(authorizeRequest(), context);
    const call = await processor.next();
    const viaB = instanceB.authorizePayment(authorizeRequest(), context);
    call.answer({ approved: true });
    const [a, b] = await Promise.all([viaA, viaB]);
    assert.deepEqual(b, a);
    assert.equal(processor.calls(), 1);
  });

  test("a claim whose holder crashed blocks others until its lease passes; then the same request asks the processor again", async () => {
    let now = new Date("2030-01-01T00:00:00Z");
    const store = createMemoryPaymentStore(() => now);
    const processor = countingProcessor();
    const payments = service({ store, processor, pendingLeaseMs: 30_000 });
    // An instance claimed the order and died before recording any outcome.
    const request = checkAuthorization({ orderId: "order-1", amount: { currencyCode: "EUR", amountMinor: 4500n }, cardToken: "tok_visa" });
    const crashed = await store.claim({ ...request, fingerprint: requestFingerprint(request), leaseMs: 30_000 });
    assert.equal(crashed.claimed, true);

    await rejectsWith(payments.authorizePayment(authorizeRequest(), createTestCallContext({ timeoutMs: 30 })), Code.UNAVAILABLE, /in progress; retry/);
    assert.equal(processor.calls, 0);

    now = new Date(now.getTime() + 30_000);
    await rejectsWith(payments.authorizePayment(authorizeRequest({ amountMinor: 1n }), context), Code.FAILED_PRECONDITION, /different request/);
    assert.equal(statusOf(await payments.authorizePayment(authorizeRequest(), context)), PaymentStatus.AUTHORIZED);
    assert.equal(processor.calls, 1);
    assert.equal((await store.get("order-1"))?.id, crashed.payment.id, "the same payment, not a second one");
  });

  test("bad input is INVALID_ARGUMENT naming the field, writes nothing and asks no processor", async () => {
    const processor = countingProcessor();
    const payments = service({ processor });
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ orderId: "", amount: { currencyCode: "EUR", amountMinor: 1n }, cardToken: "tok_visa" }, /^order_id: is required/],
      [{ orderId: "bad id", amount: { currencyCode: "EUR", amountMinor: 1n }, cardToken: "tok_visa" }, /^order_id:/],
      [{ orderId: "x".repeat(65), amount: { currencyCode: "EUR", amountMinor: 1n }, cardToken: "tok_visa" }, /^order_id: must be at most 64/],
      [{ orderId: "o-bad", cardToken: "tok_visa" }, /^amount: is required/],
      [{ orderId: "o-bad", amount: { currencyCode: "eur", amountMinor: 1n }, cardToken: "tok_visa" }, /^amount\.currency_code:/],
      [{ orderId: "o-bad", amount: { currencyCode: "EUR", amountMinor: 0n }, cardToken: "tok_visa" }, /^amount\.amount_minor: must be positive$/],
      [{ orderId: "o-bad", amount: { currencyCode: "EUR", amountMinor: -1n }, cardToken: "tok_visa" }, /^amount\.amount_minor: must be positive$/],
      [{ orderId: "o-bad", amount: { currencyCode: "EUR", amountMinor: 10n ** 12n + 1n }, cardToken: "tok_visa" }, /^amount\.amount_minor: must be at most/],
      [{ orderId: "o-bad", amount: { currencyCode: "EUR", amountMinor: 1n }, cardToken: "" }, /^card_token: is required/],
      [{ orderId: "o-bad", amount: { currencyCode: "EUR", amountMinor: 1n }, cardToken: "t".repeat(65) }, /^card_token: must be at most 64/],
    ];
    for (const [input, message] of cases) {
      const error = await rejection(payments.authorizePayment(create(AuthorizePaymentRequestSchema, input), context));
      assert.ok(isRpcError(error, Code.INVALID_ARGUMENT), String(error));
      assert.match(error.message, message);
      assert.equal(error.field, error.message.split(":")[0]);
    }
    await rejectsWith(payments.voidPayment(voidRequest("no spaces allowed"), context), Code.INVALID_ARGUMENT, /^order_id:/);
    assert.equal(await payments.store.get("o-bad"), undefined);
    assert.equal(await payments.store.get("no spaces allowed"), undefined);
    assert.equal(processor.calls, 0);
  });

  test("the card token appears in no log line, whatever the outcome", async () => {
    const lines: string[] = [];
    const log = createLogger({ service: "payments", level: "trace", destination: { write: (line: string) => void lines.push(line) } });
    const logged: CallContext = { ...createTestCallContext(), log };
    const rate = { value: 0 };
    const payments = service({ processor: countingProcessor(rate) });
    const secret = "tok_SECRET_4242";
    await payments.authorizePayment(authorizeRequest({ orderId: "o-a", cardToken: secret }), logged);
    await payments.authorizePayment(authorizeRequest({ orderId: "o-b", cardToken: "tok_declined" }), logged);
    rate.value = 1;
    await rejection(payments.authorizePayment(authorizeRequest({ orderId: "o-c", cardToken: secret }), logged));
    await rejection(payments.authorizePayment(authorizeRequest({ orderId: "o-a", cardToken: `${secret}x` }), logged));
    assert.ok(lines.length >= 3, "the outcomes were logged");
    assert.ok(
      lines.every((line) => !line.includes("SECRET") && !line.includes("tok_declined")),
      lines.join("\n"),
    );
  });

  test("an unexpected store failure is passed on unmapped, for the host to answer INTERNAL without details", async () => {
    const store = createMemoryPaymentStore();
    const broken: PaymentStore = { ...store, claim: () => Promise.reject(new Error("disk on fire")) };
    const payments = service({ store: broken });
    const error = await rejection(payments.authorizePayment(authorizeRequest(), context));
    assert.ok(!isRpcError(error), "the host turns it into INTERNAL with a generic message");
    assert.ok(!(error instanceof ProcessorUnavailableError));
  });
});
