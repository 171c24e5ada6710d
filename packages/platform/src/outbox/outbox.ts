import { createHash, randomUUID } from "node:crypto";
import type { Tracer } from "@opentelemetry/api";
import type { Knex } from "knex";
import type { Migration } from "../database.js";
import type { Logger } from "../logger.js";
import { inSqlTransaction, runSql, sqlStatement, type SqlStatement, type SqlTransaction } from "../sql.js";
import type { MessagePublisher, OutgoingMessage } from "../messaging/ports.js";
import { startPublishSpans } from "../telemetry/messaging.js";
import { currentTraceHeaders } from "../telemetry/tracing.js";

/**
 * The transactional outbox. A service writes its state change and the event
 * announcing it in one database transaction (enqueue); a relay publishes the
 * event afterwards with publisher confirms and marks it published only once
 * the broker confirmed. Nothing is lost (the row outlives any crash) and
 * nothing is published that was not committed. Delivery is at least once: a
 * crash between the confirm and the mark publishes a batch again, with the
 * same message ids, which consumers deduplicate.
 *
 * Order per aggregate (e.g. per order id) is kept by partitioning: each
 * aggregate hashes to one of PARTITIONS partitions; a relay works on a
 * partition only while holding its transaction-scoped advisory lock, takes
 * its rows in id order under FOR UPDATE, and publishes them in that order.
 * Several relays share the partitions and never publish a row concurrently.
 */

export const OUTBOX_PARTITIONS = 16;

/** The outbox table, for a service's migrations. */
export function outboxMigration(name: string, table = "outbox"): Migration {
  return {
    name,
    up: async (db) => {
      await db.raw(`create table ${table} (
        id bigserial primary key,
        message_id uuid not null unique,
        partition smallint not null,
        aggregate_id text not null,
        exchange text not null,
        routing_key text not null,
        message_type text not null,
        content_type text not null,
        headers jsonb not null default '{}',
        body bytea not null,
        created_at timestamptz not null default now(),
        published_at timestamptz
      )`);
      await db.raw(`create index ${table}_pending on ${table} (partition, id) where published_at is null`);
    },
    down: async (db) => {
      await db.raw(`drop table ${table}`);
    },
  };
}

export interface OutboxEvent {
  /** What the event is about; events of one aggregate are published in order. */
  readonly aggregateId: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly type: string;
  readonly contentType: string;
  readonly body: Uint8Array;
  readonly headers?: Readonly<Record<string, string | number>>;
  /** Defaults to a new UUID. */
  readonly messageId?: string;
}

export function partitionOf(aggregateId: string): number {
  return createHash("sha1").update(aggregateId).digest().readUInt16BE(0) % OUTBOX_PARTITIONS;
}

/**
 * A time that stands for "the now() of the statement that writes this row"
 * in an outbox body built before the statement runs. A status change written
 * by one statement (no BEGIN and COMMIT around it) announces rows whose time
 * only the database knows: the body is built with this stand-in, and
 * outboxInsertSql's `stampBody` replaces the stand-in's text with the
 * statement's now(), written as protobuf's JSON mapping writes a Timestamp of
 * millisecond precision ("...T10:20:30.456Z", no fraction when it is zero):
 * the same text the body would hold had it been built from the rows' time as
 * read back (pg and JavaScript's Date both drop the microseconds). Year 1 is
 * no time a row is ever written at, and its text is the same in every
 * writer's form (the milliseconds are not zero). Only a JSON member whose
 * whole value is that text is replaced (`"key":"0001-01-01T00:00:00.001Z"`,
 * as JSON.stringify and protobuf's JSON mapping write members): inside a
 * JSON string every quote is escaped, so free text that spells the stand-in,
 * even with quotes around it, is never touched. A text field whose whole
 * value is exactly the stand-in would be; orders' events carry ids the
 * catalog knows and reasons the services wrote.
 */
export const STATEMENT_TIME = new Date("0001-01-01T00:00:00.001Z");
/** The stand-in as a JSON member's whole value: the `":"` before it and the `"` after cannot occur inside a JSON string. */
const STATEMENT_TIME_MEMBER = `":"${STATEMENT_TIME.toISOString()}"`;

/**
 * SQL text of the timestamptz `expression` as protobuf's JSON mapping writes
 * it once a Date has dropped the microseconds: UTC, milliseconds when they
 * are not zero (to_char's MS truncates, as pg's and JavaScript's parsers do).
 */
export function jsonTimestampSql(expression: string): string {
  const utc = `(${expression}) at time zone 'UTC'`;
  return `to_char(${utc}, 'YYYY-MM-DD"T"HH24:MI:SS') || coalesce(nullif(to_char(${utc}, '.MS'), '.000'), '') || 'Z'`;
}

export interface OutboxInsertOptions {
  /** The outbox table (default "outbox"). */
  readonly table?: string;
  /** The body (UTF-8 text) carries STATEMENT_TIME: the row gets the statement's now() in its place. */
  readonly stampBody?: boolean;
}

/**
 * An INSERT of one outbox row into the table whose values are the caller's
 * placeholders $first to $first+8 (outboxRowValues gives them), inserting
 * only where `condition` holds: for a statement of the caller's that writes
 * the row with the change it announces (a data-modifying CTE).
 */
export function outboxInsertSql(first: number, condition: string, { table = "outbox", stampBody = false }: OutboxInsertOptions = {}): string {
  const at = (offset: number): string => `$${first + offset}`;
  const body = stampBody ? `convert_to(replace(convert_from(${at(8)}::bytea, 'UTF8'), '${STATEMENT_TIME_MEMBER}', '":"' || ${jsonTimestampSql("now()")} || '"'), 'UTF8')` : `${at(8)}::bytea`;
  return `insert into ${table} (message_id, partition, aggregate_id, exchange, routing_key, message_type, content_type, headers, body)
          select ${at(0)}::uuid, ${at(1)}::smallint, ${at(2)}::text, ${at(3)}::text, ${at(4)}::text, ${at(5)}::text, ${at(6)}::text, ${at(7)}::jsonb, ${body}
           where ${condition}`;
}

/**
 * The values of outboxInsertSql's placeholders for `event`: a new message id
 * unless it has one, its partition, and the active trace context (when
 * tracing is on) in its headers, so the relay's publish, which runs later
 * and elsewhere, continues the trace of the work that wrote the event.
 */
export function outboxRowValues(event: OutboxEvent): readonly [messageId: string, ...rest: unknown[]] {
  return [
    event.messageId ?? randomUUID(),
    partitionOf(event.aggregateId),
    event.aggregateId,
    event.exchange,
    event.routingKey,
    event.type,
    event.contentType,
    JSON.stringify({ ...event.headers, ...currentTraceHeaders() }),
    Buffer.from(event.body),
  ];
}

/**
 * Adds events to the outbox inside the caller's transaction (knex's or
 * inSqlTransaction's). Returns their message ids.
 */
export async function enqueueOutbox(trx: Knex.Transaction | SqlTransaction, events: readonly OutboxEvent[], table = "outbox"): Promise<string[]> {
  const ids: string[] = [];
  // One row per statement: a service writes one event per change, and one text is prepared once.
  for (const event of events) {
    const values = outboxRowValues(event);
    await runSql(trx, enqueueStatement(table), values);
    ids.push(values[0]);
  }
  return ids;
}

const enqueueStatements = new Map<string, SqlStatement>();
/** The insert of one outbox row into `table`, one statement per table name. */
function enqueueStatement(table: string): SqlStatement {
  let statement = enqueueStatements.get(table);
  if (!statement) {
    statement = sqlStatement(`${table}_enqueue`, outboxInsertSql(1, "true", { table }), "insert");
    enqueueStatements.set(table, statement);
  }
  return statement;
}

interface OutboxRow {
  id: number;
  message_id: string;
  exchange: string;
  routing_key: string;
  message_type: string;
  content_type: string;
  headers: Record<string, string | number>;
  body: Uint8Array;
  created_at: Date;
}

export interface OutboxRelayOptions {
  readonly db: Knex;
  readonly publisher: MessagePublisher;
  readonly log: Logger;
  readonly table?: string;
  /** Rows per pass, across partitions (default 200). */
  readonly batchSize?: number;
  /** How often an idle relay looks for rows written by other instances (default 250 ms). */
  readonly pollIntervalMs?: number;
  /** Delete published rows older than this (default 1 hour); 0 keeps them. */
  readonly retentionMs?: number;
  /** Advisory-lock namespace (default: derived from the table name). */
  readonly lockNamespace?: number;
  /** A publish span per traced row, continuing the trace stored with it; none when omitted. */
  readonly tracer?: Tracer;
}

export interface OutboxStats {
  /** Rows not yet published. */
  readonly backlog: number;
  /** Age of the oldest unpublished row in ms (0 when none). */
  readonly oldestAgeMs: number;
  /** Rows this relay published since it started. */
  readonly published: number;
}

export interface OutboxRelay {
  /** Starts the background loop. */
  start(): void;
  /** Asks the loop to run now (after a commit that enqueued events). */
  nudge(): void;
  /** One pass over every partition with rows (up to batchSize rows); returns how many rows it published. For tests and shutdown. */
  drainOnce(): Promise<number>;
  stats(): Promise<OutboxStats>;
  /** Stops the loop after the current pass. */
  stop(): Promise<void>;
}

interface RelayStatements {
  /** $1 lock namespace, $2 batch size: the rows of the partitions this relay could lock, oldest first, locked. */
  readonly take: SqlStatement;
  /** $1 ids (bigint[]). */
  readonly markPublished: SqlStatement;
  readonly anyPending: SqlStatement;
}

const relayStatementsByTable = new Map<string, RelayStatements>();
/** The relay's statements on `table`, one set per table name (prepared statements are named per text). */
function relayStatements(table: string): RelayStatements {
  let statements = relayStatementsByTable.get(table);
  if (!statements) {
    statements = {
      // The lock attempts must run once per pending partition before the rows are read, which a MATERIALIZED CTE guarantees.
      take: sqlStatement(
        `${table}_relay_take`,
        `with pending as (select distinct partition from ${table} where published_at is null),
              locked as materialized (select partition from pending where pg_try_advisory_xact_lock($1::integer, partition))
         select id, message_id, exchange, routing_key, message_type, content_type, headers, body, created_at
           from ${table}
          where published_at is null and partition in (select partition from locked)
          order by id
          limit $2
          for update of ${table}`,
        "select",
      ),
      markPublished: sqlStatement(`${table}_relay_mark`, `update ${table} set published_at = now() where id = any($1::bigint[])`),
      anyPending: sqlStatement(`${table}_relay_any_pending`, `select id from ${table} where published_at is null limit 1`),
    };
    relayStatementsByTable.set(table, statements);
  }
  return statements;
}

export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { db, publisher, log } = options;
  const table = options.table ?? "outbox";
  const batchSize = options.batchSize ?? 200;
  const pollIntervalMs = options.pollIntervalMs ?? 250;
  const retentionMs = options.retentionMs ?? 60 * 60 * 1000;
  const lockNamespace = options.lockNamespace ?? createHash("sha1").update(`outbox:${table}`).digest().readInt32BE(0);
  const statements = relayStatements(table);
  let published = 0;
  let running: Promise<void> | undefined;
  let stopping = false;
  let wake: (() => void) | undefined;
  let nudged = false;
  let lastCleanup = 0;
  let busy = false;

  /**
   * One pass: a single transaction over every partition with unpublished
   * rows. It tries their advisory locks and takes the rows of the partitions
   * it got in one statement, publishes them all as one batch (one wait for
   * the broker's confirms), marks them in one statement and commits: a fixed
   * four round trips per pass however many orders it carries, where a
   * transaction per partition cost five each and ran the confirms one
   * partition after the other. Rows are taken in id order under a global
   * limit, so what a pass takes of each partition is that partition's oldest
   * rows: order per aggregate holds. A partition another relay holds is left
   * to it; a row another relay published since this statement's snapshot
   * fails FOR UPDATE's recheck of `published_at is null` and is skipped.
   * The statements are prepared SQL (runSql): a relay runs them for every
   * few orders.
   */
  const relayPass = async (): Promise<number> =>
    inSqlTransaction(db, async (trx) => {
      const { rows } = await runSql<OutboxRow>(trx, statements.take, [lockNamespace, batchSize]);
      if (rows.length === 0) return 0;
      const messages: OutgoingMessage[] = rows.map((row) => ({
        messageId: row.message_id,
        exchange: row.exchange,
        routingKey: row.routing_key,
        type: row.message_type,
        contentType: row.content_type,
        body: row.body,
        headers: row.headers,
        timestamp: new Date(row.created_at),
      }));
      const publishing = startPublishSpans(options.tracer, messages);
      try {
        await publisher.publish(publishing.messages);
      } catch (error) {
        publishing.end(error);
        throw error;
      }
      publishing.end();
      await runSql(trx, statements.markPublished, [rows.map((row) => row.id)]);
      return rows.length;
    });

  const drainOnce = async (): Promise<number> => {
    // An idle relay first takes one cheap look (the partial index holds only
    // unpublished rows) instead of a transaction; a busy one, whose last pass
    // found rows, goes straight to the next pass.
    const worthAPass = busy || (await runSql(db, statements.anyPending, [])).rows.length > 0;
    const total = worthAPass ? await relayPass() : 0;
    busy = total > 0;
    published += total;
    if (retentionMs > 0 && Date.now() - lastCleanup > Math.min(retentionMs, 60_000)) {
      lastCleanup = Date.now();
      await db(table)
        .whereNotNull("published_at")
        .andWhere("published_at", "<", new Date(Date.now() - retentionMs))
        .delete();
    }
    return total;
  };

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      if (nudged) {
        nudged = false;
        resolve();
        return;
      }
      const timer = setTimeout(() => {
        wake = undefined;
        resolve();
      }, ms);
      wake = () => {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      };
    });

  const loop = async (): Promise<void> => {
    let failures = 0;
    while (!stopping) {
      try {
        const count = await drainOnce();
        failures = 0;
        // A full batch means there is more: go again at once.
        if (count === 0) await sleep(pollIntervalMs);
      } catch (error) {
        failures++;
        const delay = Math.min(5_000, 100 * 2 ** Math.min(failures, 6)) * Math.random();
        log.warn({ err: error instanceof Error ? error.message : String(error), failures, retryInMs: Math.round(delay) }, "outbox relay pass failed; will retry");
        await sleep(delay);
      }
    }
  };

  return {
    start() {
      running ??= loop();
    },
    nudge() {
      if (wake) wake();
      else nudged = true;
    },
    drainOnce,
    async stats() {
      const row = await db(table).whereNull("published_at").first(db.raw("count(*)::int as backlog"), db.raw("coalesce(extract(epoch from (now() - min(created_at))) * 1000, 0)::float8 as oldest"));
      return { backlog: Number(row?.backlog ?? 0), oldestAgeMs: Math.round(Number(row?.oldest ?? 0)), published };
    },
    async stop() {
      stopping = true;
      wake?.();
      await running;
    },
  };
}
