import { randomUUID } from "node:crypto";
import { runSql, sqlStatement, type Knex, type SqlStatement } from "@meshwork/platform";
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

const COLUMNS = "order_id, id, status, amount_minor, currency, request_fingerprint, decline_reason, claim_id, claim_expires_at, created_at, updated_at";

/**
 * The store's statements: each runs for every authorization or void, so each
 * is prepared SQL (runSql) rather than built by knex per call. $n * interval
 * '1 millisecond' is a lease ending on the database's clock.
 */
const SQL = {
  /**
   * A new claim of the order id, or the take-over of an expired one: the
   * holder of an expired claim is presumed dead (crashed between claim and
   * outcome), so the very same request may ask the processor again. Returns
   * no row when another claim holds or the payment is final.
   */
  claim: sqlStatement(
    "payments_claim",
    `insert into payments as current (order_id, id, status, amount_minor, currency, request_fingerprint, claim_id, claim_expires_at)
     values ($1, $2, 'pending', $3, $4, $5, $6, now() + $7::integer * interval '1 millisecond')
     on conflict (order_id) do update set claim_id = excluded.claim_id, claim_expires_at = excluded.claim_expires_at
      where current.status = 'pending' and current.request_fingerprint = excluded.request_fingerprint and current.claim_expires_at <= now()
     returning ${COLUMNS}`,
  ),
  finish: sqlStatement(
    "payments_finish",
    `update payments set status = $3, decline_reason = $4, claim_id = null, claim_expires_at = null, updated_at = now()
      where order_id = $1 and status = 'pending' and claim_id = $2
     returning ${COLUMNS}`,
  ),
  release: sqlStatement("payments_release", "update payments set claim_expires_at = now() where order_id = $1 and status = 'pending' and claim_id = $2"),
  tombstone: sqlStatement("payments_void_tombstone", `insert into payments (order_id, id, status) values ($1, $2, 'voided') on conflict (order_id) do nothing returning ${COLUMNS}`),
  void: sqlStatement(
    "payments_void",
    `update payments set status = 'voided', claim_id = null, claim_expires_at = null, updated_at = now()
      where order_id = $1 and status in ('authorized', 'pending')
     returning ${COLUMNS}`,
  ),
  get: sqlStatement("payments_get", `select ${COLUMNS} from payments where order_id = $1`),
};

/**
 * Payments on knex's connections, for PostgreSQL and PGlite alike. Every
 * change is one conditional statement on the order's row, so concurrent
 * callers are serialised by the primary key and the row lock, and PostgreSQL
 * re-checks each condition after waiting for a concurrent writer. Lease
 * times use the database's clock, the one clock every instance shares. No
 * transaction is ever held open while the processor is asked.
 */
export function createKnexPaymentStore(db: Knex): PaymentStore {
  const one = async (statement: SqlStatement, values: readonly unknown[]): Promise<PaymentRecord | undefined> => {
    const {
      rows: [row],
    } = await runSql<PaymentRow>(db, statement, values);
    return row ? toRecord(row) : undefined;
  };
  const read = (orderId: string): Promise<PaymentRecord | undefined> => one(SQL.get, [orderId]);

  return {
    async claim({ orderId, amountMinor, currency, fingerprint, leaseMs }) {
      const claimId = randomUUID();
      const claimed = await one(SQL.claim, [orderId, randomUUID(), amountMinor, currency, fingerprint, claimId, Math.ceil(leaseMs)]);
      if (claimed) return { claimed: true, claimId, payment: claimed };
      // Rows are never deleted, so a claim refused means this read finds one.
      return { claimed: false, payment: (await read(orderId))! };
    },

    async finish(orderId, claimId, outcome) {
      const finished = await one(SQL.finish, [orderId, claimId, outcome.status, outcome.status === "declined" ? outcome.reason : ""]);
      if (finished) return finished;
      const current = await read(orderId);
      if (!current) throw new Error(`no payment for order ${orderId}`);
      return current;
    },

    async release(orderId, claimId) {
      await runSql(db, SQL.release, [orderId, claimId]);
    },

    async void(orderId) {
      return (await one(SQL.tombstone, [orderId, randomUUID()])) ?? (await one(SQL.void, [orderId])) ?? (await read(orderId))!;
    },

    get: read,
  };
}
