/**
 * What one instance has done, counted in process: for operators' logs and
 * metrics, and for tests that must see competing consumers share the work
 * (each instance counts only what it handled itself).
 */
export interface NotificationStats {
  /** Events handled for the first time (each made an inbox entry). */
  readonly handled: number;
  /** Events dropped because their message id was already in the inbox. */
  readonly duplicates: number;
  /** Notifications recorded. */
  readonly recorded: number;
  /** Events refused as unreadable or of an unsupported schema version (dead-lettered). */
  readonly refused: number;
  /** WatchNotifications streams open on this instance. */
  readonly watchers: number;
}

export interface StatsBoard {
  snapshot(): NotificationStats;
  add(counter: Exclude<keyof NotificationStats, "watchers">, amount?: number): void;
  setWatchers(count: number): void;
  /** Resolves once `done(stats)` holds, checked at every change; rejects after timeoutMs. */
  until(done: (stats: NotificationStats) => boolean, timeoutMs?: number): Promise<NotificationStats>;
}

export function createStatsBoard(): StatsBoard {
  const counts = { handled: 0, duplicates: 0, recorded: 0, refused: 0, watchers: 0 };
  const listeners = new Set<() => void>();
  const changed = (): void =>
    listeners.forEach((listener) => {
      listener();
    });
  const snapshot = (): NotificationStats => ({ ...counts });
  return {
    snapshot,
    add(counter, amount = 1) {
      counts[counter] += amount;
      changed();
    },
    setWatchers(count) {
      counts.watchers = count;
      changed();
    },
    until(done, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (!done(counts)) return;
          listeners.delete(check);
          clearTimeout(timer);
          resolve(snapshot());
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`notification stats did not reach the expected state within ${timeoutMs} ms: ${JSON.stringify(counts)}`));
        }, timeoutMs);
        // A waiter nobody needs any more (another one won a race) must not keep the process alive.
        timer.unref();
        listeners.add(check);
        check();
      });
    },
  };
}
