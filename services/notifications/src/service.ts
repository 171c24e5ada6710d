import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { NotificationSchema, NotificationService } from "@meshwork/contracts/shop/notifications/v1/notifications";
import { Code, errorMapper, RpcError, type AuthenticatedUser, type CallContext, type ServiceHandlers, type WatchHub } from "@meshwork/platform";
import { checkPageSize, decodePageToken, encodePageToken, type NotificationRecord } from "./notifications.js";
import type { NotificationStore } from "./ports.js";

export interface NotificationServiceDeps {
  readonly store: NotificationStore;
  readonly authenticate: (context: CallContext) => Promise<AuthenticatedUser>;
  readonly hub: WatchHub;
  /**
   * How often a stream re-reads its user's notifications without being woken.
   * Wake-ups deliver them: this instance's own records and, for other
   * instances', the change feed (change-feed.ts); this is only a safety net,
   * so it can be long (NOTIFICATIONS_WATCH_REREAD_MS).
   */
  readonly watchPollMs: number;
  /** Aborted when the server shuts down: open streams end with UNAVAILABLE so clients watch again elsewhere. */
  readonly closing: AbortSignal;
  /** Current time in epoch ms (tests move it; default Date.now). */
  readonly now?: () => number;
}

/**
 * How long a stream keeps re-reading notifications it has already sent.
 * Sequence numbers are taken when a row is inserted but become visible when
 * its transaction commits, so a smaller one can show up after a larger one.
 * The transaction that records notifications is two inserts and lasts
 * milliseconds; a minute is a wide margin, and per user it is few rows.
 */
export const SETTLE_MS = 60_000;
const READ_PAGE = 100;

export function notificationMessage(notification: NotificationRecord): MessageInitShape<typeof NotificationSchema> {
  return {
    id: notification.id,
    userId: notification.userId,
    orderId: notification.orderId,
    subject: notification.subject,
    body: notification.body,
    createTime: timestampFromDate(notification.createdAt),
  };
}

const mapped = errorMapper();

const shuttingDown = (): RpcError => new RpcError(Code.UNAVAILABLE, "the server is shutting down; watch again");

export function createNotificationHandlers(deps: NotificationServiceDeps): ServiceHandlers<typeof NotificationService> {
  const { store, hub } = deps;
  const now = deps.now ?? Date.now;

  return {
    listNotifications: (request, context) =>
      mapped(async () => {
        const user = await deps.authenticate(context);
        const limit = checkPageSize(request.pageSize);
        const before = decodePageToken(request.pageToken);
        // One more than asked tells whether a next page exists without a count query.
        const found = await store.list(user.userId, limit + 1, before);
        const page = found.slice(0, limit);
        const last = page.at(-1);
        return { notifications: page.map(notificationMessage), nextPageToken: found.length > limit && last ? encodePageToken(last.seq) : "" };
      }),

    async *watchNotifications(_request, context) {
      if (deps.closing.aborted) throw shuttingDown();
      const user = await mapped(() => deps.authenticate(context));
      const signal = AbortSignal.any([context.signal, deps.closing]);
      // "From now": what is already recorded is not sent. Subscribing after
      // this read is safe because the first pass below reads anyway.
      let floor = await store.latestSeq(user.userId);
      const subscription = hub.watch(user.userId);
      /** Sent notifications above the floor, with when they were first read. */
      const sent = new Map<number, number>();
      try {
        while (!signal.aborted) {
          let after = floor;
          for (;;) {
            const page = await store.listAfter(user.userId, after, READ_PAGE);
            for (const notification of page) {
              if (sent.has(notification.seq)) continue;
              sent.set(notification.seq, now());
              yield { notification: notificationMessage(notification) };
            }
            if (page.length < READ_PAGE) break;
            after = page.at(-1)!.seq;
          }
          // Stop re-reading what settled: once a row was seen SETTLE_MS ago,
          // every smaller seq has long committed (or never will).
          const settledBefore = now() - SETTLE_MS;
          for (const [seq, seenAt] of sent) {
            if (seenAt > settledBefore) continue;
            floor = Math.max(floor, seq);
          }
          for (const seq of sent.keys()) if (seq <= floor) sent.delete(seq);
          await subscription.changed(deps.watchPollMs, signal);
        }
      } finally {
        subscription.close();
      }
      if (deps.closing.aborted && !context.signal.aborted) throw shuttingDown();
    },
  };
}
