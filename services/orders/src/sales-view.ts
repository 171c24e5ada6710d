/**
 * The sales view: an asynchronous read model of the order streams (issue 15),
 * kept by the projection reader of @meshwork/platform/events under the name
 * "sales", and rebuilt from the streams by `rebuildSalesView`.
 *
 * - sales_by_product_hour: units and revenue (minor units, per currency) per
 *   product per hour, for confirmed orders only, bucketed by the UTC hour of
 *   the OrderConfirmed event's recordedAt.
 * - sales_outcomes_by_hour: orders by final state (confirmed, rejected,
 *   failed) per hour of the final event.
 *
 * It is eventually consistent: it lags the streams by the poll interval and
 * by the reader's horizon (the oldest running transaction of the cluster), so
 * every answer carries how fresh it is (`readSalesReport`).
 */
import type { Knex } from "knex";
import {
  createProjectionReader,
  eventTables,
  type EventRow,
  type EventStore,
  type ProjectionCheckpoint,
  type ProjectionReader,
  type RecordedEvent,
  type RebuildOptions,
  type RebuildReport,
  withProjectionLock,
} from "@meshwork/platform";
import type { OrderLine } from "./orders.js";
import { orderEventStore } from "./adapters/order-store.knex.js";

export const SALES_PROJECTION = "sales";

export interface SalesTables {
  /** The projection's checkpoint name. */
  readonly name: string;
  readonly products: string;
  readonly outcomes: string;
}

/** The live view, read by GetSalesReport. */
export const LIVE_SALES: SalesTables = { name: SALES_PROJECTION, products: "sales_by_product_hour", outcomes: "sales_outcomes_by_hour" };
/** Where a rebuild writes before it swaps (migration 0007 made both pairs). */
export const SHADOW_SALES: SalesTables = { name: `${SALES_PROJECTION}:rebuild`, products: "sales_by_product_hour_rebuild", outcomes: "sales_outcomes_by_hour_rebuild" };

export type SalesOutcome = "confirmed" | "rejected" | "failed";
const OUTCOME: Readonly<Record<string, SalesOutcome>> = { OrderConfirmed: "confirmed", OrderRejected: "rejected", OrderFailed: "failed" };

const HOUR_MS = 3_600_000;
/** The start of the UTC hour `date` falls in. */
export const hourOf = (date: Date): Date => new Date(Math.floor(date.getTime() / HOUR_MS) * HOUR_MS);

/**
 * The handler that applies a batch of order events to `tables`, inside the
 * reader's transaction.
 *
 * A confirmed order's lines are read from its StockReserved event, in this
 * same transaction, rather than kept as per-order state in a table of the
 * view: the event is immutable and precedes OrderConfirmed in its stream, so
 * it has committed (in an earlier transaction or the same one) whenever
 * OrderConfirmed is visible; one indexed query per batch finds them all. A
 * state table would be a third table for every rebuild to shadow, swap and
 * compare, and one more thing that could disagree with the streams.
 */
export function createSalesHandler(store: EventStore, tables: SalesTables): (trx: Knex.Transaction, events: readonly RecordedEvent[]) => Promise<void> {
  const { events: eventsTable } = eventTables();
  return async (trx, events) => {
    const confirmedStreams = [...new Set(events.filter((event) => event.type === "OrderConfirmed").map((event) => event.streamId))];
    const reserved = new Map<string, RecordedEvent>();
    if (confirmedStreams.length > 0) {
      const rows = (await trx(eventsTable)
        .whereIn("stream_id", confirmedStreams)
        .andWhere({ type: "StockReserved" })
        .orderBy("version")
        .select("position", "stream_id", "version", "type", "schema_version", "data", "metadata", "recorded_at")) as EventRow[];
      // The last reservation of a stream is the one that was confirmed.
      for (const row of rows) reserved.set(row.stream_id, store.decode(row));
    }

    const products = new Map<string, { hour: Date; product_id: string; currency: string; units: number; revenue_minor: number }>();
    const outcomes = new Map<string, { hour: Date; outcome: SalesOutcome; orders: number }>();
    for (const event of events) {
      const outcome = OUTCOME[event.type];
      if (!outcome) continue;
      const hour = hourOf(event.recordedAt);
      const outcomeKey = `${hour.getTime()}|${outcome}`;
      const counted = outcomes.get(outcomeKey) ?? { hour, outcome, orders: 0 };
      counted.orders += 1;
      outcomes.set(outcomeKey, counted);
      if (outcome !== "confirmed") continue;
      const reservation = reserved.get(event.streamId);
      // A confirmed order without reserved stock is a corrupt stream: the
      // batch fails (and is retried, and logged) rather than undercount.
      if (!reservation) throw new Error(`sales view: ${event.streamId} is confirmed at version ${event.version} without a StockReserved event`);
      for (const line of (reservation.data as { lines: readonly Required<OrderLine>[] }).lines) {
        const key = `${hour.getTime()}|${line.productId}|${line.currency}`;
        const sold = products.get(key) ?? { hour, product_id: line.productId, currency: line.currency, units: 0, revenue_minor: 0 };
        sold.units += line.quantity;
        sold.revenue_minor += line.quantity * line.unitPriceMinor;
        products.set(key, sold);
      }
    }
    if (products.size > 0)
      await trx(tables.products)
        .insert([...products.values()])
        .onConflict(["hour", "product_id", "currency"])
        .merge({ units: trx.raw("??.units + excluded.units", [tables.products]), revenue_minor: trx.raw("??.revenue_minor + excluded.revenue_minor", [tables.products]) });
    if (outcomes.size > 0)
      await trx(tables.outcomes)
        .insert([...outcomes.values()])
        .onConflict(["hour", "outcome"])
        .merge({ orders: trx.raw("??.orders + excluded.orders", [tables.outcomes]) });
  };
}

export interface SalesReaderOptions {
  readonly store?: EventStore;
  readonly batchSize?: number;
}

/** The projection reader of the live sales view (checkpoint "sales"): what main.ts runs in the background. */
export function createSalesProjection(options: SalesReaderOptions = {}, tables: SalesTables = LIVE_SALES): ProjectionReader {
  const store = options.store ?? orderEventStore();
  return createProjectionReader({ name: tables.name, store, handle: createSalesHandler(store, tables), ...(options.batchSize ? { batchSize: options.batchSize } : {}) });
}

// ---------------------------------------------------------------------------
// Rebuild

/** Rows that differ between two tables of the same shape, matched on `keys` (missing on one side counts). */
async function differingRows(trx: Knex.Transaction, live: string, shadow: string, keys: readonly string[], values: readonly string[]): Promise<number> {
  const on = keys.map((key) => `l.${key} = s.${key}`).join(" and ");
  const differs = values.map((value) => `l.${value} is distinct from s.${value}`).join(" or ");
  const { rows } = (await trx.raw(`select count(*) as n from ${live} l full join ${shadow} s on ${on} where ${differs}`)) as { rows: { n: number }[] };
  return Number(rows[0]?.n ?? 0);
}

const sameCheckpoint = (a: ProjectionCheckpoint, b: ProjectionCheckpoint): boolean => a.transactionId === b.transactionId && a.position === b.position;

/**
 * Rebuilds the sales view from the order streams, while the service keeps
 * serving and the live projection keeps running.
 *
 * 1. Takes the projection's lock (withProjectionLock): a second rebuild fails
 *    at once, naming the projection.
 * 2. Replays every stream into the shadow tables with a reader of its own
 *    (checkpoint "sales:rebuild"), one committed batch at a time: an
 *    interrupted rebuild (crash, Ctrl-C, `maxBatches`) resumes where it stopped.
 * 3. In one transaction: locks the live checkpoint row (the live readers of
 *    every instance wait on it), catches the live view up, catches the shadow
 *    up to exactly the live checkpoint, counts the rows that differ, and
 *    (unless `check`) replaces the live rows with the shadow's. Readers of the
 *    view see the old rows or the new ones, never a mix. The shadow state is
 *    then emptied (also with `check`: its rows were for comparing).
 */
export async function rebuildSalesView(db: Knex, options: RebuildOptions = {}): Promise<RebuildReport> {
  const log = options.log ?? (() => {});
  const { checkpoints } = eventTables();
  const store = orderEventStore();
  const readerOptions = { store, ...(options.batchSize ? { batchSize: options.batchSize } : {}) };
  const live = createSalesProjection(readerOptions, LIVE_SALES);
  const shadow = createSalesProjection(readerOptions, SHADOW_SALES);
  if (options.maxBatches !== undefined && (!Number.isInteger(options.maxBatches) || options.maxBatches < 1)) throw new RangeError(`maxBatches must be a whole number >= 1, not ${options.maxBatches}`);

  return withProjectionLock(db, SALES_PROJECTION, async () => {
    const resumed = (await db(checkpoints).where({ name: SHADOW_SALES.name }).first("name")) !== undefined;
    if (resumed) log(`${SALES_PROJECTION}: resuming the rebuild from position ${(await shadow.checkpoint(db)).position}`);
    else log(`${SALES_PROJECTION}: rebuilding from the first event`);

    let handled = 0;
    let batches = 0;
    for (;;) {
      if (options.maxBatches !== undefined && batches >= options.maxBatches) {
        log(`${SALES_PROJECTION}: stopped after ${batches} batches (${handled} events); run again to resume`);
        return { name: SALES_PROJECTION, handled, resumed, differences: 0, swapped: false };
      }
      const count = await shadow.runOnce(db);
      if (count === 0) break;
      handled += count;
      batches += 1;
      if (batches % 20 === 0) log(`${SALES_PROJECTION}: ${handled} events replayed`);
    }

    return db.transaction(async (trx) => {
      await trx(checkpoints)
        .insert({ name: LIVE_SALES.name, transaction_id: trx.raw("'0'::xid8"), position: 0 })
        .onConflict("name")
        .ignore();
      // From here until commit, the live readers of every instance wait.
      await trx(checkpoints).where({ name: LIVE_SALES.name }).forUpdate().first("name");
      await live.catchUp(trx);
      const target = await live.checkpoint(trx);
      handled += await shadow.catchUp(trx, { until: target });
      const reached = await shadow.checkpoint(trx);
      // The shadow's last read had an older horizon than the live one's, so it
      // cannot be ahead; anything else would be a bug worth stopping for.
      if (!sameCheckpoint(reached, target) && !(reached.position === 0 && target.position === 0))
        throw new Error(`${SALES_PROJECTION}: the rebuilt view stopped at ${reached.transactionId}/${reached.position}, the live one is at ${target.transactionId}/${target.position}`);

      const differences =
        (await differingRows(trx, LIVE_SALES.products, SHADOW_SALES.products, ["hour", "product_id", "currency"], ["units", "revenue_minor"])) +
        (await differingRows(trx, LIVE_SALES.outcomes, SHADOW_SALES.outcomes, ["hour", "outcome"], ["orders"]));
      const swapped = !options.check;
      if (swapped) {
        for (const [liveTable, shadowTable] of [
          [LIVE_SALES.products, SHADOW_SALES.products],
          [LIVE_SALES.outcomes, SHADOW_SALES.outcomes],
        ] as const) {
          await trx(liveTable).delete();
          await trx.raw(`insert into ${liveTable} select * from ${shadowTable}`);
        }
        await trx(checkpoints)
          .where({ name: LIVE_SALES.name })
          .update({ transaction_id: trx.raw("?::xid8", [target.transactionId]), position: target.position, updated_at: trx.fn.now() });
      }
      await trx(SHADOW_SALES.products).delete();
      await trx(SHADOW_SALES.outcomes).delete();
      await trx(checkpoints).where({ name: SHADOW_SALES.name }).delete();
      log(`${SALES_PROJECTION}: ${handled} events replayed, ${differences} rows differed, ${swapped ? "live view replaced" : "checked only, live view kept"}`);
      return { name: SALES_PROJECTION, handled, resumed, differences, swapped };
    });
  });
}

// ---------------------------------------------------------------------------
// Reading

export interface SalesReportRange {
  /** Inclusive, on an hour. */
  readonly from: Date;
  /** Exclusive, on an hour. */
  readonly to: Date;
}

export interface ProductHour {
  readonly hour: Date;
  readonly productId: string;
  readonly currency: string;
  readonly units: number;
  readonly revenueMinor: number;
}

export interface OutcomeCounts {
  confirmed: number;
  rejected: number;
  failed: number;
}

export interface SalesFreshness {
  /** When the last event the view includes was recorded; undefined before the first. */
  readonly lastEventAt: Date | undefined;
  /** When the projection last moved its checkpoint; undefined before its first batch. */
  readonly checkpointUpdatedAt: Date | undefined;
  /** Committed events the view does not include yet (counted up to PENDING_COUNT_LIMIT). */
  readonly pendingEvents: number;
  /** When this answer was read. */
  readonly readAt: Date;
}

export interface SalesReport {
  readonly range: SalesReportRange;
  readonly products: readonly ProductHour[];
  readonly outcomesByHour: readonly ({ readonly hour: Date } & OutcomeCounts)[];
  readonly outcomes: OutcomeCounts;
  readonly freshness: SalesFreshness;
}

/** Counting pending events stops here: "at least this many" is all a caller needs to know. */
export const PENDING_COUNT_LIMIT = 10_000;

/** The live view over `range`, and how fresh it is: one read-only snapshot (repeatable read), so the numbers and the freshness agree. */
export async function readSalesReport(db: Knex, range: SalesReportRange): Promise<SalesReport> {
  const { events, checkpoints } = eventTables();
  return db.transaction(
    async (trx) => {
      const products = (await trx(LIVE_SALES.products)
        .where("hour", ">=", range.from)
        .andWhere("hour", "<", range.to)
        .orderBy([{ column: "hour" }, { column: "product_id" }, { column: "currency" }])
        .select("hour", "product_id", "currency", "units", "revenue_minor")) as { hour: Date; product_id: string; currency: string; units: number; revenue_minor: number }[];
      const outcomeRows = (await trx(LIVE_SALES.outcomes).where("hour", ">=", range.from).andWhere("hour", "<", range.to).orderBy("hour").select("hour", "outcome", "orders")) as {
        hour: Date;
        outcome: SalesOutcome;
        orders: number;
      }[];
      const checkpoint = (await trx(checkpoints).where({ name: LIVE_SALES.name }).first(trx.raw("transaction_id::text as transaction_id"), "position", "updated_at")) as
        | { transaction_id: string; position: number; updated_at: Date }
        | undefined;
      const last = checkpoint && checkpoint.position > 0 ? ((await trx(events).where({ position: checkpoint.position }).first("recorded_at")) as { recorded_at: Date } | undefined) : undefined;
      const { rows } = (await trx.raw(`select count(*) as n from (select 1 from ${events} where (transaction_id, position) > (?::xid8, ?) limit ?) pending`, [
        checkpoint?.transaction_id ?? "0",
        checkpoint?.position ?? 0,
        PENDING_COUNT_LIMIT,
      ])) as { rows: { n: number }[] };

      const byHour = new Map<number, { hour: Date } & OutcomeCounts>();
      const outcomes: OutcomeCounts = { confirmed: 0, rejected: 0, failed: 0 };
      for (const row of outcomeRows) {
        const hour = new Date(row.hour);
        const entry = byHour.get(hour.getTime()) ?? { hour, confirmed: 0, rejected: 0, failed: 0 };
        entry[row.outcome] += Number(row.orders);
        outcomes[row.outcome] += Number(row.orders);
        byHour.set(hour.getTime(), entry);
      }
      return {
        range,
        products: products.map((row) => ({ hour: new Date(row.hour), productId: row.product_id, currency: row.currency, units: Number(row.units), revenueMinor: Number(row.revenue_minor) })),
        outcomesByHour: [...byHour.values()],
        outcomes,
        freshness: {
          lastEventAt: last ? new Date(last.recorded_at) : undefined,
          checkpointUpdatedAt: checkpoint && checkpoint.position > 0 ? new Date(checkpoint.updated_at) : undefined,
          pendingEvents: Number(rows[0]?.n ?? 0),
          readAt: new Date(),
        },
      };
    },
    { isolationLevel: "repeatable read", readOnly: true },
  );
}
