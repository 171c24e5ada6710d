import type { AuthorizationOutcome, PaymentRecord } from "./payments.js";

/** An order id claimed for one authorization request. */
export interface AuthorizationClaim {
  readonly orderId: string;
  readonly amountMinor: number;
  readonly currency: string;
  readonly fingerprint: string;
  /** How long the claim protects the order from other askers if its holder never finishes (crash). */
  readonly leaseMs: number;
}

export type ClaimResult =
  /** This caller now holds the order (a new pending payment, or one whose lease had passed) and asks the processor. */
  | { readonly claimed: true; readonly claimId: string; readonly payment: PaymentRecord }
  /** The order already has a payment; the caller decides with existingPaymentOutcome. */
  | { readonly claimed: false; readonly payment: PaymentRecord };

/**
 * Where payments are kept. Adapters: knex (PostgreSQL or PGlite) and memory;
 * one behaviour suite (test/payment-store.behaviour.ts) runs against all.
 */
export interface PaymentStore {
  /**
   * Claims the order id before the processor is asked, atomically under any
   * concurrency: inserts a pending payment when the order has none, or takes
   * over a pending payment of the same fingerprint whose lease has passed.
   * Otherwise returns the existing payment unchanged.
   */
  claim(claim: AuthorizationClaim): Promise<ClaimResult>;
  /**
   * Records the processor's answer if `claimId` still holds the pending
   * payment; returns the payment as it now stands (voided when a void won).
   */
  finish(orderId: string, claimId: string, outcome: AuthorizationOutcome): Promise<PaymentRecord>;
  /**
   * Gives the claim up without an outcome (the processor did not answer):
   * the payment stays pending with its lease ended, so the same request may
   * claim it again at once and a different one is still refused.
   */
  release(orderId: string, claimId: string): Promise<void>;
  /**
   * Authorized or pending becomes voided; declined and voided stay as they
   * are; an order with no payment gets a voided tombstone.
   */
  void(orderId: string): Promise<PaymentRecord>;
  get(orderId: string): Promise<PaymentRecord | undefined>;
}

/** What the processor is asked. */
export interface ProcessorRequest {
  /**
   * The order id. A real processor deduplicates on it, which is what makes
   * asking again after a crash or timeout safe (no second hold on the card).
   */
  readonly idempotencyKey: string;
  readonly amountMinor: number;
  readonly currency: string;
  readonly cardToken: string;
}

export type ProcessorDecision = { readonly approved: true } | { readonly approved: false; readonly reason: string };

/**
 * The card processor. Adapter: a simulation (adapters/payment-processor.simulated.ts).
 * Throws ProcessorUnavailableError when it cannot answer now; stops and
 * throws when `signal` aborts.
 */
export interface PaymentProcessor {
  authorize(request: ProcessorRequest, signal: AbortSignal): Promise<ProcessorDecision>;
}
