import { randomUUID } from "node:crypto";
import type { NotificationRecord } from "../notifications.js";
import type { NotificationStore } from "../ports.js";

/**
 * Notifications in memory, for RPC tests. Each operation runs to completion
 * without awaiting in between, which is what makes `record` atomic here; the
 * behaviour suite holds it to the knex adapter's semantics.
 */
export function createMemoryNotificationStore(clock: () => Date = () => new Date()): NotificationStore {
  const inbox = new Set<string>();
  const notifications: NotificationRecord[] = [];
  let seq = 0;
  const ofUser = (userId: string): NotificationRecord[] => notifications.filter((notification) => notification.userId === userId);

  return {
    async record(messageId, drafts) {
      if (inbox.has(messageId)) return { duplicate: true, notifications: [] };
      inbox.add(messageId);
      const createdAt = clock();
      const recorded = drafts.map((draft): NotificationRecord => ({ ...draft, id: randomUUID(), seq: ++seq, messageId, createdAt }));
      notifications.push(...recorded);
      return { duplicate: false, notifications: recorded };
    },
    async list(userId, limit, beforeSeq) {
      return ofUser(userId)
        .filter((notification) => beforeSeq === undefined || notification.seq < beforeSeq)
        .sort((a, b) => b.seq - a.seq)
        .slice(0, limit);
    },
    async listAfter(userId, afterSeq, limit) {
      return ofUser(userId)
        .filter((notification) => notification.seq > afterSeq)
        .sort((a, b) => a.seq - b.seq)
        .slice(0, limit);
    },
    async latestSeq(userId) {
      return ofUser(userId).reduce((latest, notification) => Math.max(latest, notification.seq), 0);
    },
    async changesAfter(afterSeq, limit) {
      return notifications
        .filter((notification) => notification.seq > afterSeq)
        .sort((a, b) => a.seq - b.seq)
        .slice(0, limit)
        .map(({ seq, userId }) => ({ seq, userId }));
    },
    async latestChangeSeq() {
      return seq;
    },
  };
}
