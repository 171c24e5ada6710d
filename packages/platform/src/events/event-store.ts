/*
 * Emmett (@event-driven-io/emmett-postgresql 0.42.0, read from its package, not installed here) was not
 * taken: it connects through its own `dumbo` layer on a pg.Pool or pg.Client and appends in a transaction
 * it opens itself (pool.withTransaction around a PL/pgSQL function), so it cannot join a knex transaction
 * shared with the outbox, and it has no PGlite connector for `npm start`. This store is small and on knex.
 */
import type { Knex } from "knex";
import type { Migration } from "../database.js";
import { runSql, sqlStatement } from "../sql.js";

/**
 * Event streams on knex. A stream (one per aggregate, e.g. per order) is the
 * ordered list of its events, numbered 1, 2, 3...; `append` adds events at an
 * expected version inside the caller's transaction, so the outbox row that
 * announces them commits or rolls back with them. Two writers appending at
 * the same version cannot both succeed: the unique (stream_id, version)
 * constraint refuses the second, which becomes a StreamConflictError the
 * caller answers by re-reading the stream and retrying.
 *
 * Every event also gets a global `position` (a sequence) and the id of the
 * transaction that wrote it (`transaction_id`), which the projection reader
 * (projection-reader.ts) needs: positions are handed out at insert, not at
 * commit, so they alone do not tell a reader which events are still to come.
 */

/** An event to append: its type, the version of its data's shape, the data, and metadata (causation, correlation, trace). */
export interface NewEvent {
  readonly type: string;
  /** Version of `data`'s shape for this type; upcasters turn older versions into the current one. */
  readonly schemaVersion: number;
  readonly data: unknown;
  readonly metadata?: Readonly<Record<string, unknown>>;
}

export interface RecordedEvent {
  readonly streamId: string;
  /** 1 for a stream's first event. */
  readonly version: number;
  /** Global order of insertion (not of commit). */
  readonly position: number;
  readonly type: string;
  readonly schemaVersion: number;
  readonly data: unknown;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly recordedAt: Date;
}

/**
 * Turns the data of one (type, schemaVersion) into the next shape. Upcasters
 * chain: v1 -> v2 -> v3, each one step; the stored row is never rewritten.
 */
export interface Upcaster {
  readonly type: string;
  readonly fromSchemaVersion: number;
  readonly toSchemaVersion: number;
  upcast(data: unknown, metadata: Readonly<Record<string, unknown>>): unknown;
}

/** Another writer appended to the stream first; re-read it and retry the whole transaction. */
export class StreamConflictError extends Error {
  override readonly name = "StreamConflictError";
  constructor(
    readonly streamId: string,
    readonly expectedVersion: number,
    readonly actualVersion: number | undefined,
  ) {
    super(`stream ${streamId} is not at version ${expectedVersion}${actualVersion === undefined ? "" : ` but at ${actualVersion}`}`);
  }
}

export interface EventStoreTables {
  /** Default "events". */
  readonly events?: string;
  /** Default "projection_checkpoints". */
  readonly checkpoints?: string;
}

export function eventTables(tables: EventStoreTables = {}): Required<EventStoreTables> {
  return { events: tables.events ?? "events", checkpoints: tables.checkpoints ?? "projection_checkpoints" };
}

/** The events and checkpoints tables, for a service's migrations. */
export function eventStoreMigration(name: string, tables: EventStoreTables = {}): Migration {
  const { events, checkpoints } = eventTables(tables);
  return {
    name,
    up: async (db) => {
      // transaction_id: pg_current_xact_id() is the writing transaction's id,
      // the same for every row it writes; the reader compares it with the
      // oldest transaction still running (see projection-reader.ts).
      await db.raw(`create table ${events} (
        position bigserial primary key,
        stream_id text not null,
        version integer not null check (version > 0),
        type text not null,
        schema_version integer not null,
        data jsonb not null,
        metadata jsonb not null default '{}',
        transaction_id xid8 not null default pg_current_xact_id(),
        recorded_at timestamptz not null default now(),
        constraint ${events}_stream_version unique (stream_id, version)
      )`);
      await db.raw(`create index ${events}_commit_order on ${events} (transaction_id, position)`);
      await db.raw(`create table ${checkpoints} (
        name text primary key,
        transaction_id xid8 not null,
        position bigint not null,
        updated_at timestamptz not null default now()
      )`);
    },
    down: async (db) => {
      await db.raw(`drop table ${checkpoints}`);
      await db.raw(`drop table ${events}`);
    },
  };
}

export interface EventStoreOptions {
  readonly tables?: EventStoreTables;
  readonly upcasters?: readonly Upcaster[];
}

export interface AppendResult {
  /** The stream's version after the append: the expected version of the next one. */
  readonly nextExpectedVersion: number;
  readonly positions: readonly number[];
  /** The appended events as stored (position, version, recordedAt): what a fold continues with. */
  readonly events: readonly RecordedEvent[];
}

/** Where an append's values go in a statement of the caller's: its placeholders ("$1"...) of the stream id, the expected version and the events. */
export interface AppendPlaceholders {
  readonly streamId: string;
  readonly expectedVersion: string;
  readonly events: string;
}

/**
 * An append as SQL text to put into one statement of the caller's (a
 * data-modifying CTE that writes the events with the state they change,
 * without BEGIN and COMMIT). The text is the same for any number of events
 * (they go as one jsonb array), so the caller's statement can be prepared
 * once (runSql). The caller makes every write of its statement depend on the
 * guard; a writer racing past it meets the unique (stream_id, version)
 * constraint, which fails the whole statement.
 */
export interface AppendSql {
  /** A boolean expression: the stream is at the expected version (true when there is nothing to append, as `append` does not check then either). */
  readonly atExpectedVersion: string;
  /** An INSERT ... RETURNING position, version, recorded_at of the events, inserting only where `condition` (an SQL boolean expression) holds. */
  insert(condition: string): string;
}

/** One append's values for AppendSql's placeholders, and how to read what its insert returned. */
export interface AppendStatement {
  readonly values: { readonly streamId: string; readonly expectedVersion: number; readonly events: string };
  /** The appended events as stored, from the rows the insert returned. */
  recorded(rows: readonly { position: number | string; version: number; recorded_at: Date | string }[]): RecordedEvent[];
  /** A StreamConflictError for the database's unique violation on the stream's version; other errors as they are. */
  conflict(error: unknown): unknown;
}

export interface EventStore {
  /**
   * Appends events after `expectedVersion` (0: the stream must not exist yet)
   * in the caller's transaction. Throws StreamConflictError when the stream
   * is elsewhere; after a conflict raised by the database the transaction is
   * aborted, so the caller retries the whole transaction, not just this call.
   */
  append(trx: Knex.Transaction, streamId: string, expectedVersion: number, events: readonly NewEvent[]): Promise<AppendResult>;
  /** The SQL of an append for the caller's own single statement, at the caller's placeholders (see AppendSql); append() is the transactional form. */
  appendSql(placeholders: AppendPlaceholders): AppendSql;
  /** The values of one such append, and how to read its result. */
  appendStatement(streamId: string, expectedVersion: number, events: readonly NewEvent[]): AppendStatement;
  /** The stream's events in version order, upcast to their current shapes; [] when the stream does not exist. */
  readStream(db: Knex | Knex.Transaction, streamId: string, options?: { readonly fromVersion?: number }): Promise<RecordedEvent[]>;
  /** Brings a stored row (of this store's table) to its current shape; for readers of the table such as projections. */
  decode(row: EventRow): RecordedEvent;
}

/** A row of the events table as the database returns it. */
export interface EventRow {
  position: number | string;
  stream_id: string;
  version: number;
  type: string;
  schema_version: number;
  data: unknown;
  metadata: Record<string, unknown>;
  recorded_at: Date;
}

const UNIQUE_VIOLATION = "23505";

function isStreamVersionViolation(error: unknown, constraint: string): boolean {
  if (typeof error !== "object" || error === null) return false;
  const { code, constraint: name, message } = error as { code?: unknown; constraint?: unknown; message?: unknown };
  if (code !== UNIQUE_VIOLATION) return false;
  // pg names the constraint in a field of its own; fall back to the message for drivers that do not.
  return name === constraint || (typeof message === "string" && message.includes(constraint));
}

export function createUpcast(
  upcasters: readonly Upcaster[],
): (type: string, schemaVersion: number, data: unknown, metadata: Readonly<Record<string, unknown>>) => { schemaVersion: number; data: unknown } {
  const byKey = new Map<string, Upcaster>();
  for (const upcaster of upcasters) {
    // A step that does not move forward would loop for ever on read.
    if (upcaster.toSchemaVersion <= upcaster.fromSchemaVersion)
      throw new RangeError(`upcaster of ${upcaster.type} must raise the schema version (${upcaster.fromSchemaVersion} -> ${upcaster.toSchemaVersion})`);
    const key = `${upcaster.type}@${upcaster.fromSchemaVersion}`;
    if (byKey.has(key)) throw new RangeError(`two upcasters for ${key}`);
    byKey.set(key, upcaster);
  }
  return (type, schemaVersion, data, metadata) => {
    let current = { schemaVersion, data };
    for (let step = byKey.get(`${type}@${current.schemaVersion}`); step; step = byKey.get(`${type}@${current.schemaVersion}`)) {
      current = { schemaVersion: step.toSchemaVersion, data: step.upcast(current.data, metadata) };
    }
    return current;
  };
}

export function createEventStore(options: EventStoreOptions = {}): EventStore {
  const { events: table } = eventTables(options.tables);
  const constraint = `${table}_stream_version`;
  const upcast = createUpcast(options.upcasters ?? []);

  const decode = (row: EventRow): RecordedEvent => {
    const metadata = row.metadata ?? {};
    const current = upcast(row.type, row.schema_version, row.data, metadata);
    return {
      streamId: row.stream_id,
      version: row.version,
      position: Number(row.position),
      type: row.type,
      schemaVersion: current.schemaVersion,
      data: current.data,
      metadata,
      recordedAt: row.recorded_at,
    };
  };

  const currentVersion = async (db: Knex | Knex.Transaction, streamId: string): Promise<number> => {
    const row = (await db(table).where({ stream_id: streamId }).max({ version: "version" }).first()) as { version: number | null } | undefined;
    return row?.version ?? 0;
  };

  const checkExpected = (expectedVersion: number): void => {
    if (!Number.isInteger(expectedVersion) || expectedVersion < 0) throw new RangeError(`expected version must be a whole number >= 0, not ${expectedVersion}`);
  };

  const appendSql = ({ streamId, expectedVersion, events }: AppendPlaceholders): AppendSql => ({
    atExpectedVersion: `(jsonb_array_length(${events}::jsonb) = 0 or (select coalesce(max(version), 0) from ${table} where stream_id = ${streamId}) = ${expectedVersion}::integer)`,
    insert: (condition) =>
      `insert into ${table} (stream_id, version, type, schema_version, data, metadata)
       select ${streamId}, ${expectedVersion}::integer + appended.n::integer, appended.event->>'type', (appended.event->>'schemaVersion')::integer,
              appended.event->'data', coalesce(appended.event->'metadata', '{}'::jsonb)
         from jsonb_array_elements(${events}::jsonb) with ordinality as appended (event, n)
        where ${condition}
       returning position, version, recorded_at`,
  });
  /** The events as the one jsonb value of AppendSql's `events` placeholder. */
  const eventsValue = (events: readonly NewEvent[]): string =>
    JSON.stringify(events.map((event) => ({ type: event.type, schemaVersion: event.schemaVersion, data: event.data ?? null, metadata: event.metadata ?? {} })));
  const appendText = appendSql({ streamId: "$1", expectedVersion: "$2", events: "$3" });
  const APPEND = sqlStatement(`${table}_append`, appendText.insert(appendText.atExpectedVersion));
  const READ_STREAM = sqlStatement(
    `${table}_read_stream`,
    `select position, stream_id, version, type, schema_version, data, metadata, recorded_at from ${table} where stream_id = $1 and version >= $2 order by version`,
  );

  /** What a fold continues with: the events as given, with what the database assigned them. */
  const recordedOf = (
    streamId: string,
    expectedVersion: number,
    events: readonly NewEvent[],
    returned: readonly { position: number | string; version: number; recorded_at: Date | string }[],
  ): RecordedEvent[] =>
    [...returned]
      .sort((x, y) => x.version - y.version)
      .map((row, index): RecordedEvent => {
        const event = events[row.version - expectedVersion - 1] ?? events[index]!;
        return {
          streamId,
          version: row.version,
          position: Number(row.position),
          type: event.type,
          schemaVersion: event.schemaVersion,
          data: event.data,
          metadata: event.metadata ?? {},
          recordedAt: new Date(row.recorded_at),
        };
      });

  return {
    appendSql,

    appendStatement(streamId, expectedVersion, events) {
      checkExpected(expectedVersion);
      return {
        values: { streamId, expectedVersion, events: eventsValue(events) },
        recorded: (rows) => recordedOf(streamId, expectedVersion, events, rows),
        conflict: (error) => (isStreamVersionViolation(error, constraint) ? new StreamConflictError(streamId, expectedVersion, undefined) : error),
      };
    },

    async append(trx, streamId, expectedVersion, events) {
      checkExpected(expectedVersion);
      if (events.length === 0) {
        const actual = await currentVersion(trx, streamId);
        if (actual !== expectedVersion) throw new StreamConflictError(streamId, expectedVersion, actual);
        return { nextExpectedVersion: expectedVersion, positions: [], events: [] };
      }
      // One round trip: the insert happens only if the stream is at the
      // expected version, so a stale or too-high one inserts nothing (and does
      // not abort the transaction); a writer racing past the check meets the
      // unique (stream_id, version) constraint instead.
      try {
        const { rows: returned } = await runSql<{ position: number | string; version: number; recorded_at: Date }>(trx, APPEND, [streamId, expectedVersion, eventsValue(events)]);
        if (returned.length === 0) throw new StreamConflictError(streamId, expectedVersion, await currentVersion(trx, streamId));
        const recorded = recordedOf(streamId, expectedVersion, events, returned);
        return { nextExpectedVersion: expectedVersion + events.length, positions: recorded.map((event) => event.position), events: recorded };
      } catch (error) {
        if (isStreamVersionViolation(error, constraint)) throw new StreamConflictError(streamId, expectedVersion, undefined);
        throw error;
      }
    },

    async readStream(db, streamId, readOptions = {}) {
      const { rows } = await runSql<EventRow>(db, READ_STREAM, [streamId, readOptions.fromVersion ?? 1]);
      return rows.map(decode);
    },

    decode,
  };
}
