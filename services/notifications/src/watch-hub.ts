/**
 * Wakes WatchNotifications streams when this process records notifications
 * for their user. Notifications recorded by another instance are found by
 * the stream's poll instead (see service.ts).
 */
export interface WatchHub {
  /** Wakes every stream of the user. */
  notify(userId: string): void;
  /**
   * Subscribes a stream to its user's changes. Subscribe before reading, so a
   * change that lands between the read and the wait is not slept through.
   */
  watch(userId: string): WatchSubscription;
  /** Streams subscribed right now. */
  watchers(): number;
}

export interface WatchSubscription {
  /** Resolves at once if the user changed since the last call, else at the next change, after timeoutMs, or when the signal aborts. */
  changed(timeoutMs: number, signal: AbortSignal): Promise<void>;
  close(): void;
}

export function createWatchHub(onWatchersChanged: (count: number) => void = () => undefined): WatchHub {
  interface Entry {
    dirty: boolean;
    wake: (() => void) | undefined;
  }
  const byUser = new Map<string, Set<Entry>>();
  let count = 0;

  return {
    notify(userId) {
      for (const entry of byUser.get(userId) ?? []) {
        entry.dirty = true;
        entry.wake?.();
      }
    },
    watchers: () => count,
    watch(userId) {
      const entry: Entry = { dirty: false, wake: undefined };
      const entries = byUser.get(userId) ?? new Set<Entry>();
      byUser.set(userId, entries);
      entries.add(entry);
      count++;
      onWatchersChanged(count);
      let closed = false;
      return {
        changed(timeoutMs, signal) {
          if (entry.dirty || signal.aborted || closed) {
            entry.dirty = false;
            return Promise.resolve();
          }
          return new Promise<void>((resolve) => {
            const done = (): void => {
              clearTimeout(timer);
              signal.removeEventListener("abort", done);
              entry.wake = undefined;
              entry.dirty = false;
              resolve();
            };
            const timer = setTimeout(done, timeoutMs);
            signal.addEventListener("abort", done, { once: true });
            entry.wake = done;
          });
        },
        close() {
          if (closed) return;
          closed = true;
          entry.wake?.();
          entries.delete(entry);
          if (entries.size === 0 && byUser.get(userId) === entries) byUser.delete(userId);
          count--;
          onWatchersChanged(count);
        },
      };
    },
  };
}
