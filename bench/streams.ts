/**
 * Section "streams": what reading an order from its event stream costs, and
 * whether a snapshot would pay. On a fresh PostgreSQL database with the
 * orders schema, it times, one after another in this process:
 *  - load: readStream + fold (what the saga does before each run), for
 *    streams of 2, 6 (the longest an order's saga writes: placed, reserved,
 *    declined, voided, released, rejected), 50 and 500 events;
 *  - snapshot: reading one row holding the folded order as jsonb, the
 *    cheapest a snapshot could be (it would still have to read the events
 *    after it, which this leaves out in its favour).
 * The ratio load/snapshot at 6 events is the figure that decides: an order
 * stream never grows past that, so a snapshot pays only if that ratio is
 * large. Each read is timed in every round (order alternating, warm-up in the
 * first round only) and reported as the median with the min–max spread.
 */
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { admin, databaseUrl } from "./admin-db.js";
import { createSilentLogger, openDatabase, type Knex } from "@meshwork/platform";
import { migrations } from "../services/orders/migrations/index.js";
import { foldOrder, ORDER_SCHEMA_VERSION, orderStreamId } from "../services/orders/src/order-events.js";
import { orderEventStore } from "../services/orders/src/adapters/order-store.knex.js";
import { STREAMS_WINDOW_DIVISOR } from "./options.js";
import type { BenchContext, BenchSection, SectionOutcome } from "./section.js";
import { compareRounds, fixed, formatRounds, formatTable, roundOrder, roundsCaveat, spreadWarning } from "./stats.js";

const LENGTHS = [2, 6, 50, 500] as const;

export const streamsSection: BenchSection = {
  name: "streams",
  estimateMs: (options) => (LENGTHS.length + 1) * (options.warmupMs + (options.rounds * options.measureMs) / STREAMS_WINDOW_DIVISOR) + 3000,
  run: runStreamsBench,
};

/** A stream of `length` events that folds: placed, reserved, then alternating payment facts short of a final one. */
function streamEvents(length: number) {
  const placed = {
    type: "OrderPlaced",
    schemaVersion: ORDER_SCHEMA_VERSION,
    data: { userId: "bench", idempotencyKey: "bench-key-1", fingerprint: "f", requestId: "r", items: [{ productId: "MW-TEA-TIN", quantity: 2 }], shipping: null },
  };
  const reserved = { type: "StockReserved", schemaVersion: ORDER_SCHEMA_VERSION, data: { lines: [{ productId: "MW-TEA-TIN", quantity: 2, unitPriceMinor: 450, currency: "EUR" }] } };
  const filler = Array.from({ length: Math.max(0, length - 2) }, (_, index) => ({
    type: index % 2 === 0 ? "PaymentVoided" : "StockReleased",
    schemaVersion: ORDER_SCHEMA_VERSION,
    data: {},
  }));
  return [placed, reserved, ...filler].slice(0, length);
}

/** Calls `once` for the warm-up, then for the measure window; returns the mean in microseconds. */
async function timed(warmupMs: number, measureMs: number, once: () => Promise<void>): Promise<number> {
  const until = (ms: number) => performance.now() + ms;
  for (const end = until(warmupMs); performance.now() < end; ) await once();
  let calls = 0;
  const start = performance.now();
  for (const end = until(measureMs); performance.now() < end; calls++) await once();
  return ((performance.now() - start) * 1000) / calls;
}

export async function runStreamsBench({ options, print }: BenchContext): Promise<SectionOutcome> {
  print("## streams: loading an order by folding its stream, against reading a snapshot row (PostgreSQL, one connection in use at a time)");
  const name = `mw_bench_streams_${randomBytes(4).toString("hex")}`;
  await admin(`create database "${name}"`);
  const database = await openDatabase({ url: databaseUrl(name), migrations, migrationsTable: "orders_migrations", log: createSilentLogger() });
  try {
    await database.migrate();
    const db: Knex = database.knex;
    const store = orderEventStore();
    await db.raw("create table bench_snapshots (stream_id text primary key, version integer not null, state jsonb not null)");
    for (const length of LENGTHS) {
      const id = `bench-${length}`;
      await db.transaction((trx) => store.append(trx, orderStreamId(id), 0, streamEvents(length)));
      const order = foldOrder(id, await store.readStream(db, orderStreamId(id)));
      await db("bench_snapshots").insert({ stream_id: orderStreamId(id), version: length, state: JSON.stringify(order) });
    }

    const reads: { readonly name: string; readonly events: string; readonly once: () => Promise<void> }[] = [
      {
        name: "snapshot row (any length)",
        events: "1",
        once: async () => {
          await db("bench_snapshots").where("stream_id", orderStreamId("bench-6")).first();
        },
      },
      ...LENGTHS.map((length) => ({
        name: "readStream + fold",
        events: String(length),
        once: async () => {
          foldOrder(`bench-${length}`, await store.readStream(db, orderStreamId(`bench-${length}`)));
        },
      })),
    ];
    const caveat = roundsCaveat(options.rounds);
    if (caveat) print(caveat);
    const windowMs = options.measureMs / STREAMS_WINDOW_DIVISOR;
    const meansUs = reads.map((): number[] => []);
    for (let round = 1; round <= options.rounds; round++) {
      for (const index of roundOrder([...reads.keys()], round)) {
        meansUs[index]!.push(await timed(round === 1 ? options.warmupMs : 0, windowMs, reads[index]!.once));
      }
    }
    const snapshotUs = meansUs[0]!;
    const rows = reads.map((read, index) => {
      const comparison = compareRounds(snapshotUs, meansUs[index]!);
      return [read.name, read.events, formatRounds(comparison.other, 0), fixed(comparison.other.median / comparison.base.median, 2)];
    });
    print(`${options.rounds} round(s) of ${windowMs / 1000} s per read, order alternating; medians over rounds, (min–max) their spread`);
    for (const line of formatTable(["read", "events", "µs per load (min–max)", "× snapshot"], rows)) print(line);
    const decisive = compareRounds(snapshotUs, meansUs[LENGTHS.indexOf(6) + 1]!);
    const warning = spreadWarning(decisive);
    if (warning) print(`6 events against the snapshot row: ${warning}`);
    print("an order's stream never exceeds 6 events; a snapshot pays only where the 6-event ratio is well above 1");
    return { failedCalls: 0 };
  } finally {
    await database.close();
    await admin(`drop database if exists "${name}" with (force)`);
  }
}
