import { createLogger, type Logger } from "@meshwork/platform";

/** One parsed log line; `level` is the label ("warn"), as the platform's logger writes it. */
export type LogEntry = Record<string, unknown> & { msg?: string; level?: string };

export interface LogCapture {
  readonly log: Logger;
  /** Every line so far. */
  readonly entries: LogEntry[];
  /** The next line `predicate` accepts (one already written does not count). */
  next(predicate: (entry: LogEntry) => boolean): Promise<LogEntry>;
}

/** A logger whose lines a test can read and await, instead of sleeping and hoping. */
export function createLogCapture(options: { readonly service?: string; readonly level?: string } = {}): LogCapture {
  const entries: LogEntry[] = [];
  const waiters = new Set<{ predicate: (entry: LogEntry) => boolean; resolve: (entry: LogEntry) => void }>();
  const log = createLogger({
    service: options.service ?? "test",
    level: options.level ?? "debug",
    destination: {
      write(line: string) {
        const entry = JSON.parse(line) as LogEntry;
        entries.push(entry);
        for (const waiter of [...waiters]) {
          if (waiter.predicate(entry)) {
            waiters.delete(waiter);
            waiter.resolve(entry);
          }
        }
      },
    },
  });
  return { log, entries, next: (predicate) => new Promise((resolve) => waiters.add({ predicate, resolve })) };
}
