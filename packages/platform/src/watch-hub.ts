/**
 * Wakes server-streaming watchers in this process when what they follow
 * changes: a stream subscribes to a key (an order id, a user id), reads the
 * current state, sends it, then waits on its subscription; whoever commits a
 * change of that key calls `notify(key)`. Changes committed by another
 * process are not seen here: streams also wait with a timeout and re-read
 * (their poll).
 *
 * No wake-up is lost. A subscription remembers a change that arrives while
 * nobody waits on it, and its next wait returns at once. So a stream that
 * subscribes BEFORE it reads cannot sleep through a change that lands
 * between its read and its wait: that change either shows in the read or
 * ends the wait (or both, which costs one spare read).
 */
export interface WatchHub {
  /** Marks `key` changed for every subscription to it, and wakes those waiting. */
  notify(key: string): void;
  /** Subscribes to changes of `key`. Subscribe before reading the state the stream sends first. */
  watch(key: string): WatchSubscription;
  /** Subscriptions open right now. */
  watchers(): number;
}

export interface WatchSubscription {
  /**
   * Resolves at once if the key changed since the subscription was made or
   * since the last wait ended, else at the next change, after `timeoutMs`, or
   * when `signal` aborts (and at once once closed). One wait at a time.
   */
  changed(timeoutMs: number, signal: AbortSignal): Promise<void>;
  /** Unsubscribes and ends a pending wait. Safe to call twice. */
  close(): void;
}

/** A hub; `onWatchersChanged` hears the number of open subscriptions after each change of it (for a gauge). */
export function createWatchHub(onWatchersChanged: (count: number) => void = () => undefined): WatchHub {
  interface Entry {
    /** A change arrived that no ended wait has reported yet. */
    dirty: boolean;
    wake: (() => void) | undefined;
  }
  const byKey = new Map<string, Set<Entry>>();
  let count = 0;

  return {
    notify(key) {
      for (const entry of byKey.get(key) ?? []) {
        entry.dirty = true;
        entry.wake?.();
      }
    },
    watchers: () => count,
    watch(key) {
      const entry: Entry = { dirty: false, wake: undefined };
      const entries = byKey.get(key) ?? new Set<Entry>();
      byKey.set(key, entries);
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
              // The caller re-reads after any wake-up, so whatever changed so far is seen.
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
          if (entries.size === 0 && byKey.get(key) === entries) byKey.delete(key);
          count--;
          onWatchersChanged(count);
        },
      };
    },
  };
}
