import { randomUUID } from "node:crypto";
import type { PaymentRecord } from "../payments.js";
import type { PaymentStore } from "../ports.js";

/**
 * Payments in memory, for RPC tests. Each operation runs to completion
 * without awaiting in between, which is what makes it atomic here; the shared
 * behaviour suite holds it to the knex adapter's semantics. `clock` decides
 * when a claim's lease has passed, so tests can move time.
 */
export function createMemoryPaymentStore(clock: () => Date = () => new Date()): PaymentStore {
  const payments = new Map<string, PaymentRecord>();

  const holds = (payment: PaymentRecord | undefined, claimId: string): payment is PaymentRecord => payment?.status === "pending" && payment.claim?.id === claimId;

  return {
    async claim({ orderId, amountMinor, currency, fingerprint, leaseMs }) {
      const now = clock();
      const expiresAt = new Date(now.getTime() + leaseMs);
      const existing = payments.get(orderId);
      const claimId = randomUUID();
      if (!existing) {
        const payment: PaymentRecord = {
          id: randomUUID(),
          orderId,
          status: "pending",
          request: { amountMinor, currency, fingerprint },
          declineReason: "",
          claim: { id: claimId, expiresAt },
          createdAt: now,
          updatedAt: now,
        };
        payments.set(orderId, payment);
        return { claimed: true, claimId, payment };
      }
      if (existing.status === "pending" && existing.request?.fingerprint === fingerprint && existing.claim!.expiresAt <= now) {
        const payment: PaymentRecord = { ...existing, claim: { id: claimId, expiresAt } };
        payments.set(orderId, payment);
        return { claimed: true, claimId, payment };
      }
      return { claimed: false, payment: existing };
    },

    async finish(orderId, claimId, outcome) {
      const existing = payments.get(orderId);
      if (!existing) throw new Error(`no payment for order ${orderId}`);
      if (!holds(existing, claimId)) return existing;
      const payment: PaymentRecord = {
        ...existing,
        status: outcome.status,
        declineReason: outcome.status === "declined" ? outcome.reason : "",
        claim: undefined,
        updatedAt: clock(),
      };
      payments.set(orderId, payment);
      return payment;
    },

    async release(orderId, claimId) {
      const existing = payments.get(orderId);
      if (holds(existing, claimId)) payments.set(orderId, { ...existing, claim: { id: claimId, expiresAt: clock() } });
    },

    async void(orderId) {
      const now = clock();
      const existing = payments.get(orderId);
      if (!existing) {
        const tombstone: PaymentRecord = {
          id: randomUUID(),
          orderId,
          status: "voided",
          request: undefined,
          declineReason: "",
          claim: undefined,
          createdAt: now,
          updatedAt: now,
        };
        payments.set(orderId, tombstone);
        return tombstone;
      }
      if (existing.status !== "authorized" && existing.status !== "pending") return existing;
      const voided: PaymentRecord = { ...existing, status: "voided", claim: undefined, updatedAt: now };
      payments.set(orderId, voided);
      return voided;
    },

    async get(orderId) {
      return payments.get(orderId);
    },
  };
}
