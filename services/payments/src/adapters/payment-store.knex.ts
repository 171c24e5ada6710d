import { randomUUID } from "node:crypto";
import type { Knex } from "@meshwork/platform";
import type { PaymentRecord, PaymentStatus } from "../payments.js";
import type { PaymentStore } from "../ports.js";

interface PaymentRow {
  order_id: string;
  id: string;
  status: PaymentStatus;
  amount_minor: number | null;
  currency: string | null;
  request_fingerprint: string | null;
  decline_reason: string;
  claim_id: string | null;
  claim_expires_at: Date | string | null;
  created_at: Date | string;
  updated_at: Date | string;
}

const toRecord = (row: PaymentRow): PaymentRecord => ({
  id: row.id,
  orderId: row.order_id,
  status: row.status,
  request: row.request_fingerprint === null ? undefined : { amountMinor: row.amount_minor!, currency: row.currency!, fingerprint: row.request_fingerprint },
  declineReason: row.decline_reason,
  claim: row.claim_id === null ? undefined : { id: row.claim_id, expiresAt: new Date(row.claim_expires_at!) },
  createdAt: new Date(row.created_at),
  updatedAt: new Date(row.updated_at),
});

/**
 * Payments on knex, for PostgreSQL and PGlite alike. Every change is one
 * conditional statement on the order's row, so concurrent callers are
 * serialised by the primary key and the row lock, and PostgreSQL re-checks
 * each condition after waiting for a concurrent writer. Lease times use the
 * database's clock, the one clock every instance shares. No transaction is
 * ever held open while the processor is asked.
 */
export function createKnexPaymentStore(db: Knex): PaymentStore {
  // Reads are typed by the row; writes take SQL expressions (now(), leases)
  // that the row type cannot describe, so their results are typed on return.
  const table = () => db<PaymentRow>("payments");
  const write = () => db("payments");
  const leaseEnd = (leaseMs: number) => db.raw("now() + ?::integer * interval '1 millisecond'", [Math.ceil(leaseMs)]);

  const read = async (orderId: string): Promise<PaymentRecord | undefined> => {
    const row = await table().where({ order_id: orderId }).first();
    return row ? toRecord(row) : undefined;
  };

  return {
    async claim({ orderId, amountMinor, currency, fingerprint, leaseMs }) {
      const claimId = randomUUID();
      const [inserted] = (await write()
        .insert({
          order_id: orderId,
          id: randomUUID(),
          status: "pending",
          amount_minor: amountMinor,
          currency,
          request_fingerprint: fingerprint,
          claim_id: claimId,
          claim_expires_at: leaseEnd(leaseMs),
        })
        .onConflict("order_id")
        .ignore()
        .returning("*")) as PaymentRow[];
      if (inserted) return { claimed: true, claimId, payment: toRecord(inserted) };
      // The holder of an expired claim is presumed dead (crashed between claim
      // and outcome): the very same request may ask the processor again.
      const [taken] = (await write()
        .where({ order_id: orderId, status: "pending", request_fingerprint: fingerprint })
        .andWhere("claim_expires_at", "<=", db.fn.now())
        .update({ claim_id: claimId, claim_expires_at: leaseEnd(leaseMs) })
        .returning("*")) as PaymentRow[];
      if (taken) return { claimed: true, claimId, payment: toRecord(taken) };
      // Rows are never deleted, so a failed insert means this read finds one.
      return { claimed: false, payment: (await read(orderId))! };
    },

    async finish(orderId, claimId, outcome) {
      const [finished] = (await write()
        .where({ order_id: orderId, status: "pending", claim_id: claimId })
        .update({
          status: outcome.status,
          decline_reason: outcome.status === "declined" ? outcome.reason : "",
          claim_id: null,
          claim_expires_at: null,
          updated_at: db.fn.now(),
        })
        .returning("*")) as PaymentRow[];
      if (finished) return toRecord(finished);
      const current = await read(orderId);
      if (!current) throw new Error(`no payment for order ${orderId}`);
      return current;
    },

    async release(orderId, claimId) {
      await write().where({ order_id: orderId, status: "pending", claim_id: claimId }).update({ claim_expires_at: db.fn.now() });
    },

    async void(orderId) {
      const [tombstone] = (await write().insert({ order_id: orderId, id: randomUUID(), status: "voided" }).onConflict("order_id").ignore().returning("*")) as PaymentRow[];
      if (tombstone) return toRecord(tombstone);
      const [voided] = (await write()
        .where({ order_id: orderId })
        .whereIn("status", ["authorized", "pending"])
        .update({ status: "voided", claim_id: null, claim_expires_at: null, updated_at: db.fn.now() })
        .returning("*")) as PaymentRow[];
      return voided ? toRecord(voided) : (await read(orderId))!;
    },

    get: read,
  };
}
