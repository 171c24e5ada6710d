import type { Knex } from "knex";

/** Another process (or task) holds the projection's lock: its rebuild is under way. */
export class ProjectionLockedError extends Error {
  override readonly name = "ProjectionLockedError";
  constructor(readonly projection: string) {
    super(`projection ${projection} is already being rebuilt elsewhere; run the rebuild again once that one has finished (an interrupted rebuild resumes)`);
  }
}

/** First key of the two-key advisory lock: keeps these locks apart from other advisory locks of the database. */
const PROJECTION_LOCK_SPACE = 0x70726a; // "prj"

/** Names held in this process, per knex instance: the whole lock on PGlite. */
const heldInProcess = new WeakMap<Knex, Set<string>>();

/**
 * Runs `work` holding the lock of projection `name`, or fails at once with
 * ProjectionLockedError when someone else holds it (no waiting: a second
 * rebuild is a mistake to report, not a queue to join).
 *
 * On PostgreSQL the lock is `pg_try_advisory_xact_lock` taken in a knex
 * transaction kept open, idle, for as long as `work` runs, and released by
 * ending that transaction: a crashed holder's connection closes and the lock
 * goes with it, so nothing stale is left to clean up. The transaction only
 * takes the lock and writes nothing, so it never gets a transaction id and
 * does not hold back projection readers (their horizon is the oldest running
 * transaction *id*, see projection-reader.ts). `work` uses `db`'s other
 * connections, so its batches commit on their own (that is what makes a
 * rebuild resumable). A server-wide `idle_in_transaction_session_timeout`
 * shorter than a rebuild would end the lock's session and so release the
 * lock: leave it unset (the default) for the role that rebuilds.
 *
 * PGlite (`npm start`) has one connection, which the open transaction would
 * take from `work`, and one process owns the database; so there the lock is
 * held in this process instead, which is all there is to exclude.
 */
export async function withProjectionLock<T>(db: Knex, name: string, work: () => Promise<T>): Promise<T> {
  if (db.client.config.client !== "pg") {
    const held = heldInProcess.get(db) ?? new Set<string>();
    heldInProcess.set(db, held);
    if (held.has(name)) throw new ProjectionLockedError(name);
    held.add(name);
    try {
      return await work();
    } finally {
      held.delete(name);
    }
  }
  const lock = await db.transaction();
  try {
    const { rows } = (await lock.raw("select pg_try_advisory_xact_lock(?, hashtext(?)) as locked", [PROJECTION_LOCK_SPACE, name])) as { rows: { locked: boolean }[] };
    if (!rows[0]?.locked) throw new ProjectionLockedError(name);
    return await work();
  } finally {
    await lock.rollback();
  }
}

/** What a rebuild of a read model did (`npm run projections:rebuild`); every projection's rebuild answers this. */
export interface RebuildReport {
  readonly name: string;
  /** What this run went through: events for a projection fed by the reader, streams for a view rebuilt stream by stream. */
  readonly handled: number;
  /** This run continued an interrupted rebuild's shadow tables and checkpoint. */
  readonly resumed: boolean;
  /** Rows (or orders) in which the rebuilt view and the live one differed. */
  readonly differences: number;
  /** The live view was replaced by the rebuilt one (false with `check`, or when interrupted by maxBatches). */
  readonly swapped: boolean;
}

export interface RebuildOptions {
  /** Compare and report only; the rebuilt rows are discarded and the live view is left as it is. */
  readonly check?: boolean;
  /** Stop after this many batches, leaving the shadow state to resume from (for tests, and to spread a rebuild out). */
  readonly maxBatches?: number;
  readonly log?: (line: string) => void;
  /** Items per batch (the projection's default when absent). */
  readonly batchSize?: number;
}
