/**
 * One poll per instance instead of one per stream. Notifications recorded
 * by this instance wake its streams through the watch hub at once; those
 * recorded by another instance (competing consumers) are only in the
 * database. Each stream used to re-read its user's rows every second to find
 * them, so N open streams cost N queries a second, for ever. Here one query
 * per interval reads every user's new rows (seq and user id only, on the
 * primary key) and wakes the streams of just those users.
 *
 * Sequence numbers are taken at insert but become visible at commit, so a
 * smaller one can appear after a larger one was read. The feed therefore
 * keeps its floor below any gap until the gap fills or has stood for
 * `settleMs` (the transaction that records notifications lasts
 * milliseconds; a gap that old is a rollback, or a number never used).
 */
import type { Logger, WatchHub } from "@meshwork/platform";
import type { NotificationStore } from "./ports.js";

export interface ChangeFeedOptions {
  readonly store: Pick<NotificationStore, "changesAfter" | "latestChangeSeq">;
  readonly hub: Pick<WatchHub, "notify">;
  /** Time between the end of one poll and the start of the next. */
  readonly intervalMs: number;
  /** How long a gap below seen rows is waited for before it is taken as permanent. */
  readonly settleMs: number;
  readonly log: Logger;
  /** Current time in epoch ms (tests move it; default Date.now). */
  readonly now?: () => number;
}

export interface ChangeFeed {
  /** One poll now: reads the rows past the floor and wakes their users' streams. */
  poll(): Promise<void>;
  /** Polls every `intervalMs` until close(). */
  start(): void;
  /** Stops polling, after the poll in progress if any. */
  close(): Promise<void>;
}

const PAGE = 500;

export function createChangeFeed(options: ChangeFeedOptions): ChangeFeed {
  const now = options.now ?? Date.now;
  /** Every row at or below it has been seen (or given up on). Undefined until the first poll: then "from now". */
  let floor: number | undefined;
  /** Rows above the floor already seen, with when they were first seen. */
  const seen = new Map<number, number>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let closed = false;

  const poll = async (): Promise<void> => {
    if (floor === undefined) {
      // Streams read their own state when they open; the feed only has to see what comes after.
      floor = await options.store.latestChangeSeq();
      return;
    }
    const woken = new Set<string>();
    let after = floor;
    for (;;) {
      const page = await options.store.changesAfter(after, PAGE);
      for (const change of page) {
        if (seen.has(change.seq)) continue;
        seen.set(change.seq, now());
        woken.add(change.userId);
      }
      if (page.length < PAGE) break;
      after = page.at(-1)!.seq;
    }
    for (const userId of woken) options.hub.notify(userId);

    // Up over every seen row with no gap below it, and over any whose gap has stood too long.
    const settledBefore = now() - options.settleMs;
    for (const [seq, seenAt] of [...seen].sort(([a], [b]) => a - b)) {
      if (seq !== floor + 1 && seenAt > settledBefore) break;
      floor = seq;
      seen.delete(seq);
    }
  };

  const loop = (): void => {
    timer = setTimeout(() => {
      running = poll()
        .catch((error: unknown) => {
          // The floor did not move: the next poll reads the same rows again, so nothing is missed.
          options.log.warn({ err: error }, "notification change feed: poll failed; trying again");
        })
        .finally(() => {
          running = undefined;
          if (!closed) loop();
        });
    }, options.intervalMs);
  };

  return {
    poll,
    start() {
      if (timer === undefined && !closed) loop();
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      await running;
    },
  };
}
