import { createEventStore, currentTraceHeaders, outboxRowValues, runSql, STATEMENT_TIME, StreamConflictError, type EventStore, type Knex, type OutboxEvent } from "@meshwork/platform";
import { eventForStep, evolveOrder, foldOrder, ORDER_SCHEMA_VERSION, orderStreamId, orderUpcasters, type OrderEvent, type OrderPlacedData } from "../order-events.js";
import { IdempotencyConflictError, type DeliveryOption, type HistoryEntry, type OrderLine, type OrderRecord, type OrderStatus, type ShippingAddress } from "../orders.js";
import type { ClaimedSaga, OrderStore, StatusEvent } from "../ports.js";
import type { SagaStep } from "../saga.js";
import type { CardTokenCipher } from "./card-token-cipher.js";
import { orderStoreSql } from "./order-store.sql.js";

export interface KnexOrderStoreDeps {
  readonly db: Knex;
  /** The outbox row announcing a status change of an order; the store writes it in the statement that makes the change. */
  readonly outbox: (aggregateId: string, event: StatusEvent) => OutboxEvent;
  /** Seals the card token at rest (card-token-cipher.ts). */
  readonly cardTokens: CardTokenCipher;
}

/**
 * Saga steps after which the card token is no longer needed: compensation
 * voids by order id, and "done" is the end. Until then (reserving stock,
 * authorising, retrying either) the token is kept, sealed.
 */
const TOKEN_NO_LONGER_NEEDED: ReadonlySet<SagaStep> = new Set(["compensate", "done"]);

interface OrderRow {
  id: string;
  user_id: string;
  idempotency_key: string;
  fingerprint: string;
  request_id: string;
  status: OrderStatus;
  reason: string;
  lines: OrderLine[] | string;
  total_minor: number | null;
  currency: string | null;
  /** Only rows written before tokens were sealed, until sealClearCardTokens() seals them: '' otherwise. */
  card_token: string;
  /** The token sealed for this order, '' once the payment step no longer needs it. */
  card_token_sealed: string;
  /** Null for orders placed through API v1 (migration 0005). */
  shipping_address: ShippingAddress | string | null;
  delivery_option: DeliveryOption | null;
  /** The version of the order's stream this row is the fold of. */
  version: number;
  created_at: Date;
  updated_at: Date;
}

interface SagaRow {
  order_id: string;
  step: SagaStep;
  attempts: number;
  authorize_attempted: boolean;
  outcome_status: "rejected" | "failed" | null;
  outcome_reason: string;
  lease_owner: string | null;
  trace_context: Record<string, string> | string | null;
}

/** An event as a CTE's append returned it, through json_build_object. */
interface AppendedRow {
  position: number | string;
  version: number;
  recorded_at: string | Date;
}

/** What a saga decision's statement answers. */
interface ApplyRow {
  /** The saga row as updated; null when nothing was written. */
  saga: SagaRow | null;
  appended: AppendedRow[] | null;
  lease_held: boolean;
  at_expected_version: boolean;
}

interface HistoryRow {
  order_id: string;
  step: HistoryEntry["step"];
  detail: string;
  occurred_at: Date;
}

const toSaga = (row: SagaRow): ClaimedSaga => ({
  orderId: row.order_id,
  step: row.step,
  attempts: row.attempts,
  authorizeAttempted: row.authorize_attempted,
  outcome: row.outcome_status ? { status: row.outcome_status, reason: row.outcome_reason } : undefined,
  leaseOwner: row.lease_owner ?? "",
  traceContext: typeof row.trace_context === "string" ? (JSON.parse(row.trace_context) as Record<string, string>) : (row.trace_context ?? {}),
});

/** The orders database's event store: order streams, read with the order upcasters. */
export const orderEventStore = (): EventStore => createEventStore({ upcasters: orderUpcasters });

/**
 * The view's columns for an order as its stream folds it: what the inline
 * projection writes in the transaction that appends the events, and what
 * `projections:rebuild -- orders` writes from the streams (order-view.ts).
 * Not the times: a JavaScript Date has milliseconds and PostgreSQL keeps
 * microseconds (listing pages by them), so the writers take them from the
 * database: now() in the appending transaction, which is the events'
 * recorded_at, or the events' recorded_at itself in a rebuild.
 */
export function viewColumns(order: OrderRecord): Record<string, unknown> {
  return {
    user_id: order.userId,
    idempotency_key: order.idempotencyKey,
    fingerprint: order.fingerprint,
    request_id: order.requestId,
    status: order.status,
    reason: order.reason,
    lines: JSON.stringify(order.lines),
    total_minor: order.totalMinor ?? null,
    currency: order.currency ?? null,
    shipping_address: order.shipping ? JSON.stringify(order.shipping.address) : null,
    delivery_option: order.shipping?.delivery ?? null,
    version: order.version,
  };
}

/** The view's timeline rows for `order`'s entries from index `from` on, without their time (now(): see viewColumns). */
export const historyRows = (order: OrderRecord, from = 0): Record<string, unknown>[] => order.history.slice(from).map((entry) => ({ order_id: order.id, step: entry.step, detail: entry.detail }));

const asNewEvent = (event: OrderEvent) => ({ type: event.type, schemaVersion: ORDER_SCHEMA_VERSION, data: event.data });

export interface KnexOrderStore extends OrderStore {
  /**
   * Seals the tokens that rows written before sealing still hold in clear
   * (migration 0004 already erased those of sagas past the payment step), so
   * their sagas can still authorise. Returns how many it sealed.
   */
  sealClearCardTokens(): Promise<number>;
}

export function createKnexOrderStore({ db, outbox, cardTokens }: KnexOrderStoreDeps): KnexOrderStore {
  const events = orderEventStore();
  const sql = orderStoreSql(events);
  // Opened only for orders whose saga may still authorise (pending); others carry none.
  const cardTokenOf = (row: Pick<OrderRow, "id" | "card_token" | "card_token_sealed">, status: OrderStatus): string =>
    row.card_token_sealed !== "" && status === "pending" ? cardTokens.open(row.id, row.card_token_sealed) : row.card_token;

  const withHistory = async (trx: Knex | Knex.Transaction, rows: OrderRow[]): Promise<OrderRecord[]> => {
    if (rows.length === 0) return [];
    const history: HistoryRow[] = await trx("order_history")
      .whereIn(
        "order_id",
        rows.map((row) => row.id),
      )
      .orderBy("id")
      .select("order_id", "step", "detail", "occurred_at");
    const byOrder = new Map<string, HistoryEntry[]>();
    for (const entry of history) {
      const list = byOrder.get(entry.order_id) ?? [];
      list.push({ step: entry.step, detail: entry.detail, occurredAt: new Date(entry.occurred_at) });
      byOrder.set(entry.order_id, list);
    }
    return rows.map((row) => ({
      id: row.id,
      userId: row.user_id,
      idempotencyKey: row.idempotency_key,
      fingerprint: row.fingerprint,
      requestId: row.request_id,
      status: row.status,
      reason: row.reason,
      lines: typeof row.lines === "string" ? (JSON.parse(row.lines) as OrderLine[]) : row.lines,
      totalMinor: row.total_minor ?? undefined,
      currency: row.currency?.trim() ?? undefined,
      cardToken: cardTokenOf(row, row.status),
      shipping:
        row.shipping_address !== null && row.delivery_option !== null
          ? { address: typeof row.shipping_address === "string" ? (JSON.parse(row.shipping_address) as ShippingAddress) : row.shipping_address, delivery: row.delivery_option }
          : undefined,
      history: byOrder.get(row.id) ?? [],
      version: row.version,
      createdAt: new Date(row.created_at),
      updatedAt: new Date(row.updated_at),
    }));
  };

  const read = async (trx: Knex | Knex.Transaction, id: string): Promise<OrderRecord | undefined> => {
    const row = await trx<OrderRow>("orders").where("id", id).first();
    return row ? (await withHistory(trx, [row]))[0] : undefined;
  };

  return {
    async place(order, event, lease) {
      const { request } = order;
      const data: OrderPlacedData = {
        userId: order.userId,
        idempotencyKey: request.idempotencyKey,
        fingerprint: order.fingerprint,
        requestId: order.requestId,
        items: request.items,
        shipping: request.shipping ?? null,
      };
      // The stream is new (expected version 0): the row inserted with it, unique per key, already makes this the only writer.
      const append = events.appendStatement(orderStreamId(order.id), 0, [asNewEvent({ type: "OrderPlaced", data })]);
      // The order row, its saga, its first event, its timeline and the outbox row
      // announcing it in one statement (sql.place), atomic without BEGIN and COMMIT.
      // The message carries the event's time, the statement's now(): built with
      // STATEMENT_TIME in its place, which the statement fills in.
      const announced = foldOrder(order.id, append.recorded([{ position: 0, version: 1, recorded_at: STATEMENT_TIME }]))!;
      let result: { created: number; appended: AppendedRow[] | null; saga: SagaRow | null; at_expected_version: boolean };
      try {
        [result] = (
          await runSql<typeof result>(db, sql.place, [
            order.id,
            order.userId,
            request.idempotencyKey,
            order.fingerprint,
            order.requestId,
            JSON.stringify(request.items),
            cardTokens.seal(order.id, request.cardToken),
            request.shipping ? JSON.stringify(request.shipping.address) : null,
            request.shipping?.delivery ?? null,
            // The placement's trace context: the saga's steps, run later by whichever
            // instance claims it, continue the order's trace from it.
            JSON.stringify(currentTraceHeaders()),
            append.values.streamId,
            append.values.expectedVersion,
            append.values.events,
            ...outboxRowValues(outbox(order.id, event(announced, undefined))),
            lease?.owner ?? null,
            lease?.leaseMs ?? null,
          ])
        ).rows as [typeof result];
      } catch (error) {
        throw append.conflict(error);
      }
      // A stream that already existed: nothing was written.
      if (!result.at_expected_version) throw new StreamConflictError(orderStreamId(order.id), 0, undefined);
      if (result.created > 0) {
        // The order as stored: its one event at the statement's time.
        const placed: OrderRecord = { ...foldOrder(order.id, append.recorded(result.appended ?? []))!, cardToken: request.cardToken };
        return { order: placed, created: true, ...(lease && result.saga ? { saga: toSaga(result.saga) } : {}) };
      }
      // Another order has this key: nothing was written.
      const existing = await db<OrderRow>("orders").where({ user_id: order.userId, idempotency_key: request.idempotencyKey }).first();
      if (!existing) throw new Error("idempotency conflict without an existing order");
      if (existing.fingerprint !== order.fingerprint) throw new IdempotencyConflictError(request.idempotencyKey);
      return { order: (await read(db, existing.id))!, created: false };
    },

    get: (id) => read(db, id),

    async load(id) {
      const [stream, secret] = await Promise.all([
        events.readStream(db, orderStreamId(id)),
        runSql<Pick<OrderRow, "id" | "card_token" | "card_token_sealed">>(db, sql.cardToken, [id]).then(({ rows }) => rows[0]),
      ]);
      const order = foldOrder(id, stream);
      if (!order) return undefined;
      return { ...order, cardToken: secret ? cardTokenOf(secret, order.status) : "" };
    },

    async list(userId, limit, after) {
      const query = db<OrderRow>("orders")
        .where("user_id", userId)
        .orderBy([
          { column: "created_at", order: "desc" },
          { column: "id", order: "desc" },
        ]);
      // The cursor's order itself gives the position: created_at has microseconds, a
      // JavaScript Date (and so the token's timestamp) only milliseconds, and comparing
      // with the truncated time skipped orders placed in the same millisecond.
      if (after) query.andWhereRaw("(created_at, id) < (select o.created_at, o.id from orders o where o.id = ? and o.user_id = ?)", [after.id, userId]);
      return withHistory(db, await query.limit(limit));
    },

    async claim(owner, limit, leaseMs, orderId) {
      const { rows } = orderId === undefined ? await runSql<SagaRow>(db, sql.claimDue, [owner, leaseMs, limit]) : await runSql<SagaRow>(db, sql.claimOne, [owner, leaseMs, limit, orderId]);
      return rows.map(toSaga);
    },

    async releaseLease(orderId, owner) {
      await runSql(db, sql.releaseLease, [orderId, owner]);
    },

    async apply(saga, current, decision, leaseMs, event) {
      // Round trips are the cost of a saga step, so a decision is one statement
      // (a data-modifying CTE, atomic without BEGIN and COMMIT): the lease-fenced
      // saga update, the event append at the version the saga last saw, the view's
      // row, its timeline and, for a change of status, the outbox row announcing
      // it. Every write depends on the saga update having
      // matched, and the update on the stream being at that version, so a lost
      // lease or a moved stream writes nothing; a writer racing past the version
      // check meets the unique (stream_id, version) constraint, which fails the
      // whole statement (a StreamConflictError). Nothing is read back: the new
      // record is built from `current` and what the statement returns.
      const keepLease = decision.step !== "done" && decision.delayMs === 0;
      const facts = decision.history.map((entry) => asNewEvent(eventForStep(entry.step, entry.detail, decision.lines)));
      const append = events.appendStatement(orderStreamId(saga.orderId), current.version, facts);
      // The view's columns hold no time (see viewColumns), so a fold with a stand-in time
      // gives them before the statement runs; the message announcing a status change is
      // built from the same fold, its stand-in (STATEMENT_TIME) replaced in the statement
      // by the events' time, the statement's now().
      const folded = facts.reduce<OrderRecord>((state, fact, index) => evolveOrder(saga.orderId, state, { ...fact, version: current.version + index + 1, recordedAt: STATEMENT_TIME }), current);
      const eraseToken = TOKEN_NO_LONGER_NEEDED.has(decision.step) && current.cardToken !== "";
      const timeline = historyRows(folded, current.history.length).map((entry) => ({ step: entry.step, detail: entry.detail }));
      const values: unknown[] = [
        saga.orderId,
        saga.leaseOwner,
        append.values.streamId,
        append.values.expectedVersion,
        append.values.events,
        decision.step,
        decision.attempts,
        decision.authorizeAttempted,
        decision.outcome?.status ?? null,
        decision.outcome?.reason ?? "",
        decision.delayMs,
        keepLease,
        leaseMs,
        eraseToken,
        JSON.stringify(timeline),
      ];
      // The view's columns change with the events; without any, the row keeps them (and its updated_at).
      const withView = facts.length > 0;
      if (withView) {
        const view = viewColumns(folded);
        values.push(
          view.status,
          view.reason,
          view.lines,
          view.total_minor,
          view.currency,
          view.version,
          view.user_id,
          view.idempotency_key,
          view.fingerprint,
          view.request_id,
          view.shipping_address,
          view.delivery_option,
        );
      }
      // A status change also writes the outbox row announcing it, in the same statement.
      const announces = folded.status !== current.status;
      if (announces) values.push(...outboxRowValues(outbox(saga.orderId, event(folded, current.status))));
      let row: ApplyRow;
      try {
        [row] = (await runSql<ApplyRow>(db, announces ? sql.apply.withOutbox : withView ? sql.apply.withView : sql.apply.withoutView, values)).rows as [ApplyRow];
      } catch (error) {
        throw append.conflict(error);
      }
      if (!row.saga) {
        if (row.lease_held && !row.at_expected_version) throw new StreamConflictError(orderStreamId(saga.orderId), current.version, undefined);
        return undefined;
      }
      const order = append.recorded(row.appended ?? []).reduce<OrderRecord>((state, fact) => evolveOrder(saga.orderId, state, fact), current);
      return { order: TOKEN_NO_LONGER_NEEDED.has(decision.step) ? { ...order, cardToken: "" } : order, saga: { ...toSaga(row.saga), leaseOwner: saga.leaseOwner } };
    },

    async sealClearCardTokens() {
      const rows: Pick<OrderRow, "id" | "card_token">[] = await db("orders").whereNot("card_token", "").select("id", "card_token");
      let sealed = 0;
      for (const row of rows) {
        // Guarded by the clear value: another instance sealing the same row at once changes nothing twice.
        sealed += await db("orders")
          .where({ id: row.id, card_token: row.card_token })
          .update({ card_token: "", card_token_sealed: cardTokens.seal(row.id, row.card_token) });
      }
      return sealed;
    },

    async pendingSagas() {
      const row = await db("sagas").whereNot("step", "done").first(db.raw("count(*)::int as n"));
      return Number(row?.n ?? 0);
    },
  };
}
