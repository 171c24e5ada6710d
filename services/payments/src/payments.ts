/**
 * The payments domain: one payment per order, the rules a request must
 * satisfy, and what makes two requests "the same". No gRPC and no SQL here.
 */
import { createHash } from "node:crypto";
import { InvalidFieldError } from "@meshwork/platform/errors";

/**
 * pending    the order id is claimed and the processor is being asked (never
 *            returned by an RPC; a crashed claim expires, see PaymentRecord.claim);
 * authorized the amount is held on the card;
 * declined   the processor refused; kept, so asking again gives the same answer;
 * voided     the authorization was cancelled, or the order was voided first.
 */
export type PaymentStatus = "pending" | "authorized" | "declined" | "voided";

/** What identifies an authorization request, without the card token itself. */
export interface RequestSummary {
  readonly amountMinor: number;
  readonly currency: string;
  /** requestFingerprint(...) of the request that claimed the order. */
  readonly fingerprint: string;
}

export interface PaymentRecord {
  readonly id: string;
  readonly orderId: string;
  readonly status: PaymentStatus;
  /** The authorization request; undefined for a void recorded before any authorization. */
  readonly request: RequestSummary | undefined;
  /** Readable by a shopper; empty unless declined. */
  readonly declineReason: string;
  /** Who is asking the processor and until when; set only while pending. */
  readonly claim: { readonly id: string; readonly expiresAt: Date } | undefined;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** A validated AuthorizePayment request. */
export interface AuthorizationRequest {
  readonly orderId: string;
  readonly amountMinor: number;
  readonly currency: string;
  /** Secret: never logged, never stored (only inside the fingerprint's hash). */
  readonly cardToken: string;
}

/** The processor's final answer, as recorded. */
export type AuthorizationOutcome = { readonly status: "authorized" } | { readonly status: "declined"; readonly reason: string };

/** The platform's field error, re-exported so domain code and tests name it from here. */
export { InvalidFieldError };

/** The order id was already used for a different authorization request. */
export class IdempotencyConflictError extends Error {
  override readonly name = "IdempotencyConflictError";
  constructor(readonly orderId: string) {
    super(`order ${orderId} already has a payment for a different request (amount, currency or card)`);
  }
}

/** The processor could not answer now (outage, timeout); asking again may work. */
export class ProcessorUnavailableError extends Error {
  override readonly name = "ProcessorUnavailableError";
}

/** Another instance is asking the processor for this order and did not finish within the caller's deadline. */
export class AuthorizationInProgressError extends Error {
  override readonly name = "AuthorizationInProgressError";
  constructor(readonly orderId: string) {
    super(`the authorization of order ${orderId} is in progress; retry`);
  }
}

export const LIMITS = {
  maxIdLength: 64,
  maxCardTokenLength: 64,
  /** 10^12 minor units (ten billion euros): far above any real basket, far below 2^53. */
  maxAmountMinor: 1_000_000_000_000n,
} as const;

const ID_PATTERN = /^[A-Za-z0-9_-]+$/;
const CURRENCY_PATTERN = /^[A-Z]{3}$/;
// Printable ASCII without the space: card tokens are opaque identifiers, and a
// stray leading or trailing blank would otherwise make "the same" card differ.
const CARD_TOKEN_PATTERN = /^[\x21-\x7E]+$/;

export function checkOrderId(value: string): string {
  if (value.length === 0) throw new InvalidFieldError("order_id", "is required");
  if (value.length > LIMITS.maxIdLength) throw new InvalidFieldError("order_id", `must be at most ${LIMITS.maxIdLength} characters`);
  if (!ID_PATTERN.test(value)) throw new InvalidFieldError("order_id", "may contain only letters, digits, '-' and '_'");
  return value;
}

/**
 * Validates an AuthorizePayment request in field order. Messages never echo
 * the card token: they may end up in the caller's logs.
 */
export function checkAuthorization(input: {
  readonly orderId: string;
  readonly amount: { readonly currencyCode: string; readonly amountMinor: bigint } | undefined;
  readonly cardToken: string;
}): AuthorizationRequest {
  const orderId = checkOrderId(input.orderId);
  const { amount } = input;
  if (amount === undefined) throw new InvalidFieldError("amount", "is required");
  if (!CURRENCY_PATTERN.test(amount.currencyCode)) {
    throw new InvalidFieldError("amount.currency_code", "must be 3 upper-case letters (ISO 4217, e.g. EUR)");
  }
  if (amount.amountMinor <= 0n) throw new InvalidFieldError("amount.amount_minor", "must be positive");
  if (amount.amountMinor > LIMITS.maxAmountMinor) {
    throw new InvalidFieldError("amount.amount_minor", `must be at most ${LIMITS.maxAmountMinor}`);
  }
  const { cardToken } = input;
  if (cardToken.length === 0) throw new InvalidFieldError("card_token", "is required");
  if (cardToken.length > LIMITS.maxCardTokenLength) {
    throw new InvalidFieldError("card_token", `must be at most ${LIMITS.maxCardTokenLength} characters`);
  }
  if (!CARD_TOKEN_PATTERN.test(cardToken)) throw new InvalidFieldError("card_token", "must be printable ASCII without spaces");
  return { orderId, amountMinor: Number(amount.amountMinor), currency: amount.currencyCode, cardToken };
}

const sha256 = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex");

/**
 * What "the same request" means for idempotency: order id, amount, currency
 * and the SHA-256 of the card token, hashed together. The token itself is
 * never stored; the version tag lets the definition change later without old
 * fingerprints silently matching new ones.
 */
export function requestFingerprint(request: AuthorizationRequest): string {
  return sha256(JSON.stringify(["authorize/v1", request.orderId, request.amountMinor, request.currency, sha256(request.cardToken)]));
}

/**
 * What an authorization does about a payment already recorded for its order:
 * "final" returns it as it is (authorized, declined, voided), "in-progress"
 * waits for whoever holds the claim. A different request is refused, except
 * against a void tombstone, which answers every late authorization.
 */
export function existingPaymentOutcome(payment: PaymentRecord, fingerprint: string): "final" | "in-progress" {
  if (payment.request === undefined) return "final";
  if (payment.request.fingerprint !== fingerprint) throw new IdempotencyConflictError(payment.orderId);
  return payment.status === "pending" ? "in-progress" : "final";
}
