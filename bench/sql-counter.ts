/**
 * Counts the SQL statements (round trips) and transactions the services of
 * this process send, per database, by wrapping pg's Client.prototype.query:
 * knex's pg dialect sends every statement through it, BEGIN included, and so
 * do the adapters' prepared statements. For the saga bench's "round trips
 * per order"; nothing else uses it. With `byText`, it also counts each
 * statement's text (whitespace folded, cut at 120 characters), for
 * BENCH_SAGA_SQL's list of what an order runs.
 */
import pg from "pg";

export interface SqlCounts {
  statements: number;
  transactions: number;
  /** Statements by text, when counted (see countSql). */
  texts?: Record<string, number>;
}

const counts = new Map<string, SqlCounts>();
let installed = false;

export function countSql(options: { readonly byText?: boolean } = {}): void {
  if (installed) return;
  installed = true;
  const original = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  pg.Client.prototype.query = function (this: pg.Client & { database?: string }, ...args: unknown[]) {
    const database = this.database ?? "?";
    const entry = counts.get(database) ?? { statements: 0, transactions: 0 };
    entry.statements++;
    const first = args[0];
    const text = typeof first === "string" ? first : ((first as { text?: string } | undefined)?.text ?? "");
    if (/^\s*begin\b/i.test(text)) entry.transactions++;
    if (options.byText) {
      const key = text.replace(/\s+/g, " ").trim().slice(0, 120);
      entry.texts ??= {};
      entry.texts[key] = (entry.texts[key] ?? 0) + 1;
    }
    counts.set(database, entry);
    return original.apply(this, args);
  } as typeof pg.Client.prototype.query;
}

/** The counts so far, by database name. */
export const sqlCounts = (): Record<string, SqlCounts> => Object.fromEntries([...counts].map(([name, entry]) => [name, { ...entry, ...(entry.texts ? { texts: { ...entry.texts } } : {}) }]));
