import type { Knex } from "knex";
import { eventTables, type EventRow, type EventStore, type EventStoreTables, type RecordedEvent } from "./event-store.js";

/**
 * Reads the events table for an asynchronous projection, in batches, with a
 * checkpoint per projection name that advances in the same transaction as the
 * projection's writes: a crash repeats no batch and loses none.
 *
 * Why not "position > checkpoint": a position is taken when a row is
 * inserted, not when it commits. Transaction A inserts position 1, B inserts
 * position 2 and commits first; a reader between the two commits sees 2,
 * moves its checkpoint to 2, and never looks at 1 again. So the reader orders
 * by the writing transaction's id and delivers only events of transactions
 * older than the oldest one still running (pg_snapshot_xmin of the current
 * snapshot): every transaction below that line has committed or rolled back,
 * so no event can appear below the checkpoint afterwards. The price is
 * latency, not correctness: a long-running writing transaction anywhere in
 * the cluster holds delivery back until it ends.
 */

export interface ProjectionReaderOptions {
  /** The projection's name: the key of its checkpoint. */
  readonly name: string;
  /** Decodes (upcasts) rows the same way readStream does. */
  readonly store: EventStore;
  readonly tables?: EventStoreTables;
  /** Events per transaction (default 500). */
  readonly batchSize?: number;
  /** Applies a batch, in commit order, inside the transaction that moves the checkpoint. */
  handle(trx: Knex.Transaction, events: readonly RecordedEvent[]): Promise<void>;
}

export interface ProjectionCheckpoint {
  /** xid8 as text: it may exceed a JavaScript number. */
  readonly transactionId: string;
  readonly position: number;
}

export interface RunOptions {
  /**
   * Handle no event past this point (inclusive bound): lets a rebuild bring
   * its shadow projection to exactly the live one's checkpoint.
   */
  readonly until?: ProjectionCheckpoint;
}

export interface ProjectionReader {
  readonly name: string;
  /**
   * Handles the next batch; returns how many events it handled (0: caught up
   * for now). Given a transaction, it runs in a savepoint of it.
   */
  runOnce(db: Knex | Knex.Transaction, options?: RunOptions): Promise<number>;
  /** Handles batches until one is not full (caught up as of its read); returns the total. */
  catchUp(db: Knex | Knex.Transaction, options?: RunOptions): Promise<number>;
  checkpoint(db: Knex | Knex.Transaction): Promise<ProjectionCheckpoint>;
}

const START: ProjectionCheckpoint = { transactionId: "0", position: 0 };

export function createProjectionReader(options: ProjectionReaderOptions): ProjectionReader {
  const { events, checkpoints } = eventTables(options.tables);
  const batchSize = options.batchSize ?? 500;

  const readCheckpoint = async (db: Knex | Knex.Transaction, lock: boolean): Promise<ProjectionCheckpoint> => {
    const query = db(checkpoints).where({ name: options.name }).first(db.raw("transaction_id::text as transaction_id"), "position");
    const row = (await (lock ? query.forUpdate() : query)) as { transaction_id: string; position: number | string } | undefined;
    return row ? { transactionId: row.transaction_id, position: Number(row.position) } : START;
  };

  const runOnce = (db: Knex | Knex.Transaction, runOptions: RunOptions = {}) =>
    db.transaction(async (trx) => {
      // The row lock makes a second reader of the same projection wait, then
      // start from the checkpoint the first one committed: no batch twice.
      await trx(checkpoints)
        .insert({ name: options.name, transaction_id: trx.raw("?::xid8", [START.transactionId]), position: START.position })
        .onConflict("name")
        .ignore();
      const from = await readCheckpoint(trx, true);
      // One statement: its snapshot both sets the line and reads below it,
      // so every transaction under the line is visible to this read.
      const { rows } = (await trx.raw(
        `select position, stream_id, version, type, schema_version, data, metadata, recorded_at, transaction_id::text as transaction_id
           from ${events}
          where (transaction_id, position) > (?::xid8, ?)
            and transaction_id < pg_snapshot_xmin(pg_current_snapshot())
            ${runOptions.until ? "and (transaction_id, position) <= (?::xid8, ?)" : ""}
          order by transaction_id, position
          limit ?`,
        [from.transactionId, from.position, ...(runOptions.until ? [runOptions.until.transactionId, runOptions.until.position] : []), batchSize],
      )) as { rows: (EventRow & { transaction_id: string })[] };
      if (rows.length === 0) return 0;
      await options.handle(trx, rows.map(options.store.decode));
      const last = rows[rows.length - 1]!;
      await trx(checkpoints)
        .where({ name: options.name })
        .update({ transaction_id: trx.raw("?::xid8", [last.transaction_id]), position: last.position, updated_at: trx.fn.now() });
      return rows.length;
    });

  return {
    name: options.name,
    runOnce,
    async catchUp(db, runOptions = {}) {
      let total = 0;
      for (;;) {
        const handled = await runOnce(db, runOptions);
        total += handled;
        // A batch short of batchSize read everything below the line as its
        // snapshot drew it: caught up for now. Reading again at once would only
        // find what committed meanwhile, which the next call picks up; under a
        // steady stream of writes it found a few events each time, a transaction
        // of five to eight statements for a handful of orders.
        if (handled < batchSize) return total;
      }
    },
    checkpoint: (db) => readCheckpoint(db, false),
  };
}
