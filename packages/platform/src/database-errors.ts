/**
 * Database failures that say "not now" rather than "this request is wrong":
 * the server restarting or failing over, a connection cut, the pool unable
 * to get a connection in time. Services answer them as UNAVAILABLE (the
 * caller may retry) instead of INTERNAL (a bug).
 */

/** SQLSTATE classes and codes of a server that is going away or not there yet. */
// admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections.
const UNAVAILABLE_SQLSTATES = new Set(["57P01", "57P02", "57P03", "53300"]);
const CONNECTION_ERRNOS = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH"]);
// knex prefixes the statement ("BEGIN; - Connection terminated unexpectedly"), hence no anchors.
const CONNECTION_MESSAGES = [
  /Connection terminated/,
  /Client has encountered a connection error/,
  /Timeout acquiring a connection/,
  /terminating connection due to/,
  /the database system is (starting up|shutting down|in recovery mode)/,
];

export function isDatabaseUnavailable(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const { code, message, name } = error as { code?: unknown; message?: unknown; name?: unknown };
  if (typeof code === "string") {
    // Class 08: connection exception.
    if (code.startsWith("08") && code.length === 5) return true;
    if (UNAVAILABLE_SQLSTATES.has(code) || CONNECTION_ERRNOS.has(code)) return true;
  }
  if (name === "KnexTimeoutError") return true;
  return typeof message === "string" && CONNECTION_MESSAGES.some((pattern) => pattern.test(message));
}
