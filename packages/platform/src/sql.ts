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
 * knex stays for migrations, admin and cold paths, and for transactions:
 * runSql takes a knex transaction as well and runs inside it. The statement
 * still raises knex's query events, so database spans (telemetry/knex.ts)
 * cover it as before.
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
}

let sequence = 0;

/**
 * Runs `statement` with `values` on `db`: a pooled connection of knex's for
 * the one statement, or the connection of the knex transaction `db` is.
 * Errors are the driver's own (code, constraint...), without knex's prefix
 * of the statement's text.
 */
export async function runSql<Row = Record<string, unknown>>(db: Knex | Knex.Transaction, statement: SqlStatement, values: readonly unknown[]): Promise<SqlResult<Row>> {
  // A finished transaction's client still hands out its connection: refuse, as knex does, rather than run outside it.
  if ("isCompleted" in db && typeof db.isCompleted === "function" && db.isCompleted()) throw new Error(`${statement.name}: the transaction is already complete`);
  const client = db.client as KnexClientInternals;
  const connection = await client.acquireConnection();
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
    await client.releaseConnection(connection);
  }
}
