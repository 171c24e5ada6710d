/**
 * The orders view (the `orders` rows' projected columns and `order_history`)
 * checked against, and rebuilt from, the order streams: `npm run
 * projections:rebuild -- orders`.
 *
 * The view is written inline, in the transaction that appends the events,
 * so it cannot lag; what a rebuild repairs is a view that a bug or a hand
 * wrote wrong. It works order by order, in the order the streams began
 * (OrderPlaced's position), each in a transaction that holds the order's row
 * lock, the same lock the saga's writes take: the service goes on placing
 * and advancing orders meanwhile, and an order the saga changes during the
 * rebuild is rebuilt either before or after that change, never half. Its
 * progress is a checkpoint row (`orders:rebuild`), so an interrupted rebuild
 * resumes after the last order it finished.
 */
import { type EventRow, type Knex, type RebuildOptions, type RebuildReport, withProjectionLock } from "@meshwork/platform";
import { foldOrder, orderIdOfStream, orderStreamId } from "../order-events.js";
import type { OrderRecord } from "../orders.js";
import { historyRows, orderEventStore, viewColumns } from "./order-store.knex.js";

export const ORDER_VIEW = "orders";
const CHECKPOINT = "orders:rebuild";
const events = orderEventStore();
const BATCH = 200;

interface ViewRow {
  id: string;
  status: string;
  reason: string;
  lines: unknown;
  total_minor: number | string | null;
  currency: string | null;
  shipping_address: unknown;
  delivery_option: string | null;
  user_id: string;
  idempotency_key: string;
  fingerprint: string;
  request_id: string;
  version: number;
  created_at: string;
  updated_at: string;
}

/** JSON with object keys sorted: jsonb keeps keys in its own order, not the order they were written in. */
const canonical = (value: unknown): unknown =>
  Array.isArray(value)
    ? value.map(canonical)
    : typeof value === "object" && value !== null
      ? Object.fromEntries(
          Object.entries(value)
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
            .map(([key, item]) => [key, canonical(item)]),
        )
      : value;
const parsed = (value: unknown): unknown => canonical(typeof value === "string" ? JSON.parse(value) : value);

/** The view's projected columns in one comparable shape (times as PostgreSQL's text: microseconds). */
function comparable(columns: Record<string, unknown>, times: { created: string; updated: string; history: readonly string[] }, history: readonly { step: unknown; detail: unknown }[]): string {
  return JSON.stringify({
    ...columns,
    lines: parsed(columns.lines),
    shipping_address: parsed(columns.shipping_address),
    total_minor: columns.total_minor === null ? null : Number(columns.total_minor),
    currency: typeof columns.currency === "string" ? columns.currency.trim() : null,
    times,
    history: history.map((entry) => [entry.step, entry.detail]),
  });
}

/** Checks one order's view against its stream and, unless `check`, rewrites it; true when they differed. */
async function rebuildOne(trx: Knex.Transaction, orderId: string, check: boolean): Promise<boolean> {
  const row = (await trx("orders").where("id", orderId).forUpdate().first("*", trx.raw("created_at::text as created_at"), trx.raw("updated_at::text as updated_at"))) as ViewRow | undefined;
  // One read of the stream: the rows to fold, and their times as PostgreSQL's text (microseconds).
  const rows = (await trx("events")
    .where("stream_id", orderStreamId(orderId))
    .orderBy("version")
    .select("position", "stream_id", "version", "type", "schema_version", "data", "metadata", "recorded_at", trx.raw("recorded_at::text as recorded_text"))) as (EventRow & {
    recorded_text: string;
  })[];
  const order = foldOrder(orderId, rows.map(events.decode)) as OrderRecord;
  const recorded = rows.map((event) => event.recorded_text);
  const times = { created: recorded[0]!, updated: recorded.at(-1)!, history: recorded };
  const expected = viewColumns(order);
  const wanted = comparable(expected, times, historyRows(order) as { step: unknown; detail: unknown }[]);

  let actual = "";
  if (row) {
    const history = (await trx("order_history").where("order_id", orderId).orderBy("id").select("step", "detail", trx.raw("occurred_at::text as occurred_at"))) as {
      step: string;
      detail: string;
      occurred_at: string;
    }[];
    const columns = Object.fromEntries(Object.keys(expected).map((key) => [key, row[key as keyof ViewRow]]));
    actual = comparable(columns, { created: row.created_at, updated: row.updated_at, history: history.map((entry) => entry.occurred_at) }, history);
  }
  if (actual === wanted) return false;
  if (check) return true;

  const stamped = { ...expected, created_at: times.created, updated_at: times.updated };
  // A view row without its order would have no idempotency key to guard, nor a card token: it is written whole.
  if (row) await trx("orders").where("id", orderId).update(stamped);
  else await trx("orders").insert({ id: orderId, ...stamped, card_token: "", card_token_sealed: "" });
  await trx("order_history").where("order_id", orderId).delete();
  await trx("order_history").insert(historyRows(order).map((entry, index) => ({ ...entry, occurred_at: times.history[index] })));
  return true;
}

/**
 * Checks (`check`) or rebuilds the orders view from the streams, holding the
 * view's rebuild lock: a second rebuild at once fails with
 * ProjectionLockedError.
 */
export function rebuildOrderView(db: Knex, options: RebuildOptions = {}): Promise<RebuildReport> {
  return withProjectionLock(db, ORDER_VIEW, () => rebuildUnlocked(db, options));
}

async function rebuildUnlocked(db: Knex, options: RebuildOptions): Promise<RebuildReport> {
  const check = options.check === true;
  const saved = check ? undefined : ((await db("projection_checkpoints").where("name", CHECKPOINT).first("position")) as { position: string | number } | undefined);
  let after = Number(saved?.position ?? 0);
  if (saved) options.log?.(`orders: resuming after position ${after}`);
  let handled = 0;
  let differences = 0;
  for (let batch = 0; options.maxBatches === undefined || batch < options.maxBatches; batch++) {
    const starts = (await db("events")
      .where("version", 1)
      .andWhere("stream_id", "like", "order-%")
      .andWhere("position", ">", after)
      .orderBy("position")
      .limit(options.batchSize ?? BATCH)
      .select("stream_id", "position")) as {
      stream_id: string;
      position: string | number;
    }[];
    if (starts.length === 0) {
      // Done: views with no stream at all are reported (there is nothing to rebuild them from), then the checkpoint goes.
      const { rows } = (await db.raw("select count(*)::int as n from orders o where not exists (select 1 from events e where e.stream_id = 'order-' || o.id)")) as { rows: { n: number }[] };
      if (rows[0]!.n > 0) options.log?.(`orders: ${rows[0]!.n} view rows have no stream; left as they are`);
      differences += rows[0]!.n;
      if (!check) await db("projection_checkpoints").where("name", CHECKPOINT).delete();
      return { name: ORDER_VIEW, handled, resumed: saved !== undefined, differences, swapped: !check };
    }
    for (const start of starts) {
      const differed = await db.transaction((trx) => rebuildOne(trx, orderIdOfStream(start.stream_id), check));
      if (differed) differences++;
      handled++;
    }
    after = Number(starts.at(-1)!.position);
    if (!check) {
      await db("projection_checkpoints")
        .insert({ name: CHECKPOINT, transaction_id: db.raw("'0'::xid8"), position: after })
        .onConflict("name")
        .merge({ position: after, updated_at: db.fn.now() });
    }
    options.log?.(`orders: ${handled} orders, ${differences} differed`);
  }
  return { name: ORDER_VIEW, handled, resumed: saved !== undefined, differences, swapped: false };
}
