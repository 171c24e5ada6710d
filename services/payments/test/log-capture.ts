import { createLogger, type Logger } from "@meshwork/platform";

export type LogEntry = Record<string, unknown> & { msg?: string; level?: string };

/** A logger whose lines a test can read and await, instead of sleeping and hoping. */
export function createLogCapture(level = "info"): {
  readonly log: Logger;
  readonly entries: LogEntry[];
  next(predicate: (entry: LogEntry) => boolean): Promise<LogEntry>;
} {
  const entries: LogEntry[] = [];
  const waiters = new Set<{ predicate: (entry: LogEntry) => boolean; resolve: (entry: LogEntry) => void }>();
  const log = createLogger({
    service: "payments",
    level,
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
