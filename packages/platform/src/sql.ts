/**
 * Hot statements without knex's query builder. A statement a service runs
 * for every request (a saga step, a stock reservation) is written once as
 * SQL text with $1, $2... placeholders and sent straight to the connection
 * knex's pool (or transaction) holds: no builder, no compiling, no runner.
 * On PostgreSQL it also goes as a named prepared statement, so the server
 * parses and plans it once per connection instead of once per call. On
 * PGlite (the embedded mode and the unit tests) the same text goes as a
 * plain parameterised query: the SQL is the same on both.
 *
 * knex stays for migrations, admin and cold paths. runSql also runs inside
 * a knex transaction, or inside inSqlTransaction's, which costs no knex
 * machinery and one round trip less: its BEGIN brings back the transaction's
 * now(), so a statement can carry the time the database will give its rows
 * (an outbox message announcing them, say). Statements still raise knex's
 * query events, so database spans (telemetry/knex.ts) cover them as before.
 */
import type { EventEmitter } from "node:events";
import type { Knex } from "knex";
import pg from "pg";

/** A statement whose text never changes: PostgreSQL keeps it prepared, by name, on each connection that ran it. */
export interface SqlStatement {
  /** Unique per text within a database (pg refuses one name for two texts). */
  readonly name: string;
  /** PostgreSQL SQL with $1, $2... placeholders. */
  readonly text: string;
  /** The span's operation name (db.operation.name): "insert", "update", "select"... */
  readonly operation: string;
}

export interface SqlResult<Row> {
  readonly rows: Row[];
  /** Rows the statement inserted, updated or deleted (or returned, for a select). */
  readonly rowCount: number;
}

/** A statement, named for PostgreSQL's statement cache; its operation is its first word unless given. */
export function sqlStatement(name: string, text: string, operation?: string): SqlStatement {
  return { name, text, operation: operation ?? (/^\s*(\w+)/.exec(text)?.[1] ?? "query").toLowerCase() };
}

/** What runSql needs of knex's client (a transaction's client hands out the transaction's connection). */
interface KnexClientInternals extends EventEmitter {
  acquireConnection(): Promise<unknown>;
  releaseConnection(connection: unknown): Promise<unknown>;
}

/** The part of PGlite's interface runSql uses. */
interface PgliteConnection {
  query<Row>(text: string, values: readonly unknown[]): Promise<{ rows: Row[]; affectedRows?: number }>;
  exec(text: string): Promise<{ rows: Record<string, unknown>[] }[]>;
}

let sequence = 0;

/** A transaction of inSqlTransaction's, for runSql. */
export interface SqlTransaction {
  /** The transaction's now() (its start, on the database's clock): the time every default now() of its rows takes. */
  readonly now: Date;
}

class Session implements SqlTransaction {
  done = false;
  constructor(
    readonly client: KnexClientInternals,
    readonly connection: unknown,
    readonly now: Date,
  ) {}
}

/** Statements without values (BEGIN, COMMIT), as one simple query; the rows of the last. */
async function simpleQuery(connection: unknown, text: string): Promise<Record<string, unknown>[]> {
  if (connection instanceof pg.Client) {
    const result = (await connection.query(text)) as pg.QueryResult | pg.QueryResult[];
    return (Array.isArray(result) ? result.at(-1) : result)?.rows ?? [];
  }
  return (await (connection as PgliteConnection).exec(text)).at(-1)?.rows ?? [];
}

/**
 * Runs `work` in a transaction on one of knex's pooled connections: BEGIN
 * (with the transaction's now() in the same round trip), `work`'s statements
 * through runSql, COMMIT; ROLLBACK when `work` throws. Only runSql may use
 * the transaction: on PGlite, a knex query of `db` inside `work` would wait
 * for the one connection this transaction holds.
 */
export async function inSqlTransaction<T>(db: Knex, work: (trx: SqlTransaction) => Promise<T>): Promise<T> {
  const client = db.client as KnexClientInternals;
  const connection = await client.acquireConnection();
  let session: Session | undefined;
  try {
    const [started] = await simpleQuery(connection, "begin; select now() as now");
    session = new Session(client, connection, new Date(started?.now as Date | string));
    const result = await work(session);
    session.done = true;
    await simpleQuery(connection, "commit");
    return result;
  } catch (error) {
    if (session) session.done = true;
    await simpleQuery(connection, "rollback").catch((rollbackError: unknown) => {
      // A connection that cannot roll back may still be in the transaction: knex's pool drops it instead of lending it again.
      (connection as { __knex__disposed?: unknown }).__knex__disposed = rollbackError;
    });
    throw error;
  } finally {
    await client.releaseConnection(connection);
  }
}

/**
 * Runs `statement` with `values` on `db`: a pooled connection of knex's for
 * the one statement, or the connection of the transaction `db` is (knex's or
 * inSqlTransaction's).
 * Errors are the driver's own (code, constraint...), without knex's prefix
 * of the statement's text.
 */
export async function runSql<Row = Record<string, unknown>>(db: Knex | Knex.Transaction | SqlTransaction, statement: SqlStatement, values: readonly unknown[]): Promise<SqlResult<Row>> {
  let client: KnexClientInternals;
  let connection: unknown;
  let pooled = false;
  if (db instanceof Session) {
    if (db.done) throw new Error(`${statement.name}: the transaction is already complete`);
    ({ client, connection } = db);
  } else {
    const knex = db as Knex | Knex.Transaction;
    // A finished transaction's client still hands out its connection: refuse, as knex does, rather than run outside it.
    if ("isCompleted" in knex && typeof knex.isCompleted === "function" && knex.isCompleted()) throw new Error(`${statement.name}: the transaction is already complete`);
    client = knex.client as KnexClientInternals;
    connection = await client.acquireConnection();
    pooled = true;
  }
  // knex's query events, as its own statements raise them: the database spans hang on them.
  const query = { __knexQueryUid: `sql-${++sequence}`, sql: statement.text, method: statement.operation };
  client.emit("query", query);
  try {
    let result: SqlResult<Row>;
    if (connection instanceof pg.Client) {
      const { rows, rowCount } = await connection.query<Row & pg.QueryResultRow>({ name: statement.name, text: statement.text, values: values as unknown[] });
      result = { rows, rowCount: rowCount ?? rows.length };
    } else {
      const { rows, affectedRows } = await (connection as PgliteConnection).query<Row>(statement.text, values);
      result = { rows, rowCount: affectedRows || rows.length };
    }
    client.emit("query-response", result.rows, query);
    return result;
  } catch (error) {
    client.emit("query-error", error, query);
    throw error;
  } finally {
    if (pooled) await client.releaseConnection(connection);
  }
}
