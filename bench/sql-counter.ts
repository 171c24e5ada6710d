/**
 * Counts the SQL statements (round trips) and transactions the services of
 * this process send, per database, by wrapping pg's Client.prototype.query:
 * knex's pg dialect sends every statement through it, BEGIN included. For
 * the saga bench's "round trips per order"; nothing else uses it.
 */
import pg from "pg";

export interface SqlCounts {
  statements: number;
  transactions: number;
}

const counts = new Map<string, SqlCounts>();
let installed = false;

export function countSql(): void {
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
    counts.set(database, entry);
    return original.apply(this, args);
  } as typeof pg.Client.prototype.query;
}

/** The counts so far, by database name. */
export const sqlCounts = (): Record<string, SqlCounts> => Object.fromEntries([...counts].map(([name, entry]) => [name, { ...entry }]));
