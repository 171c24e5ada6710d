import { randomUUID } from "node:crypto";
import type { Knex } from "@meshwork/platform";
import { orderEventStore } from "../src/adapters/order-store.knex.js";
import { ORDER_SCHEMA_VERSION, orderStreamId } from "../src/order-events.js";
import { LIVE_SALES, SHADOW_SALES, type SalesTables } from "../src/sales-view.js";

export interface SoldLine {
  readonly productId: string;
  readonly quantity: number;
  readonly unitPriceMinor: number;
  readonly currency: string;
}

export type Ending = "confirmed" | "rejected" | "failed" | "pending";

const event = (type: string, data: unknown) => ({ type, schemaVersion: ORDER_SCHEMA_VERSION, data });

/**
 * Writes an order's stream as the saga would, in one transaction, with every
 * event recorded at `at` (recorded_at is set before the commit, so no reader
 * ever sees another time): confirmed (reserved, authorized, confirmed),
 * failed after reserving (reserved, released, failed), rejected (refused),
 * or pending (placed only).
 */
export async function writeOrder(db: Knex, options: { lines: readonly SoldLine[]; ending: Ending; at?: Date; schema1?: boolean }): Promise<string> {
  const orderId = randomUUID();
  const streamId = orderStreamId(orderId);
  const { lines, ending } = options;
  const placed = event("OrderPlaced", {
    userId: "u1",
    idempotencyKey: `k-${orderId}`,
    fingerprint: "f",
    requestId: randomUUID(),
    items: lines.map((line) => ({ productId: line.productId, quantity: line.quantity })),
    shipping: null,
  });
  const reserved = event("StockReserved", { lines });
  const tail: Record<Ending, ReturnType<typeof event>[]> = {
    confirmed: [reserved, event("PaymentAuthorized", {}), event("OrderConfirmed", {})],
    failed: [reserved, event("StockReleased", {}), event("OrderFailed", { reason: "payments unavailable" })],
    rejected: [event("StockRefused", { reason: "out of stock" }), event("OrderRejected", { reason: "out of stock" })],
    pending: [],
  };
  await db.transaction(async (trx) => {
    await orderEventStore().append(trx, streamId, 0, [placed, ...tail[ending]]);
    if (options.schema1) {
      // As migration 0006 wrote them: schema 1, { detail } and the priced lines on StockReserved.
      await trx("events")
        .where({ stream_id: streamId })
        .update({ schema_version: 1, data: trx.raw(`jsonb_build_object('detail', '')`) });
      await trx("events")
        .where({ stream_id: streamId, type: "StockReserved" })
        .update({ data: JSON.stringify({ detail: "", lines }) });
      await trx("events")
        .where({ stream_id: streamId, type: "OrderPlaced" })
        .update({ data: JSON.stringify({ userId: "u1", idempotencyKey: `k-${orderId}`, fingerprint: "f", requestId: "r", lines, detail: "", shipping: null }) });
    }
    if (options.at) await trx("events").where({ stream_id: streamId }).update({ recorded_at: options.at });
  });
  return orderId;
}

/**
 * Runs `step` until every committed event is behind the projection's
 * checkpoint, polling every 20 ms for at most 15 s: the reader's horizon is
 * the oldest running transaction of the whole cluster, so another test's
 * open transaction can hold it back for a while, which a test can only wait
 * out (and the deadline names it).
 */
export async function untilProjected(db: Knex, step: () => Promise<unknown>, name: string = LIVE_SALES.name): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    await step();
    const { rows } = (await db.raw(
      `select count(*) as n from events e
        where (e.transaction_id, e.position) > coalesce((select (c.transaction_id, c.position) from projection_checkpoints c where c.name = ?), ('0'::xid8, 0::bigint))`,
      [name],
    )) as { rows: { n: number }[] };
    if (Number(rows[0]?.n) === 0) return;
    if (Date.now() > deadline) throw new Error(`projection ${name} still has ${rows[0]?.n} events to handle after 15 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A view's rows, sorted, as plain values: for comparing two views or a view with what is expected. */
export async function viewRows(db: Knex, tables: SalesTables = LIVE_SALES): Promise<{ products: string[]; outcomes: string[] }> {
  const products = (await db(tables.products).orderBy(["hour", "product_id", "currency"]).select("*")) as { hour: Date; product_id: string; currency: string; units: number; revenue_minor: number }[];
  const outcomes = (await db(tables.outcomes).orderBy(["hour", "outcome"]).select("*")) as { hour: Date; outcome: string; orders: number }[];
  return {
    products: products.map((row) => `${new Date(row.hour).toISOString()} ${row.product_id} ${row.currency} units=${row.units} revenue=${row.revenue_minor}`),
    outcomes: outcomes.map((row) => `${new Date(row.hour).toISOString()} ${row.outcome}=${row.orders}`),
  };
}

export const shadowIsEmpty = async (db: Knex): Promise<boolean> => {
  const rows = await viewRows(db, SHADOW_SALES);
  const checkpoint = await db("projection_checkpoints").where({ name: SHADOW_SALES.name }).first("name");
  return rows.products.length === 0 && rows.outcomes.length === 0 && checkpoint === undefined;
};

/**
 * Where a rebuild stands, for a failing assertion to print: every checkpoint,
 * the last event by commit order, how many events lie beyond each checkpoint,
 * the reader's horizon now, and both views. A report that differs from what
 * a test expected says little on its own; this says which batch went where.
 */
export async function rebuildState(db: Knex): Promise<string> {
  const { rows: checkpoints } = (await db.raw(
    `select c.name, c.transaction_id::text as transaction_id, c.position,
            (select count(*) from events e where (e.transaction_id, e.position) > (c.transaction_id, c.position)) as beyond
       from projection_checkpoints c order by c.name`,
  )) as { rows: unknown[] };
  const { rows: last } = (await db.raw(
    `select transaction_id::text as transaction_id, position, (select count(*) from events) as events,
            pg_snapshot_xmin(pg_current_snapshot())::text as horizon
       from events order by transaction_id desc, position desc limit 1`,
  )) as { rows: unknown[] };
  return JSON.stringify({ checkpoints, last: last[0], live: await viewRows(db), shadow: await viewRows(db, SHADOW_SALES) });
}
