import { randomUUID } from "node:crypto";
import type { Knex } from "@meshwork/platform";
import type { NotificationRecord } from "../notifications.js";
import type { NotificationStore } from "../ports.js";

interface NotificationRow {
  seq: number;
  id: string;
  user_id: string;
  order_id: string;
  message_id: string;
  subject: string;
  body: string;
  created_at: Date;
}

const COLUMNS = ["seq", "id", "user_id", "order_id", "message_id", "subject", "body", "created_at"] as const;

const toRecord = (row: NotificationRow): NotificationRecord => ({
  seq: row.seq,
  id: row.id,
  userId: row.user_id,
  orderId: row.order_id,
  messageId: row.message_id,
  subject: row.subject,
  body: row.body,
  createdAt: new Date(row.created_at),
});

/**
 * Notifications and the inbox on knex, for PostgreSQL and PGlite alike.
 * Deduplication rests on the inbox's primary key: a second transaction
 * inserting the same message id waits on the first one's row, and once that
 * commits its `on conflict do nothing` inserts nothing, so it writes no
 * notification either. (If the first rolls back, the second goes ahead.)
 */
export function createKnexNotificationStore(db: Knex): NotificationStore {
  return {
    async record(messageId, drafts) {
      return db.transaction(async (trx) => {
        const claimed = await trx("inbox").insert({ message_id: messageId }).onConflict("message_id").ignore().returning("message_id");
        if (claimed.length === 0) return { duplicate: true, notifications: [] };
        if (drafts.length === 0) return { duplicate: false, notifications: [] };
        const rows: NotificationRow[] = await trx("notifications")
          .insert(drafts.map((draft) => ({ id: randomUUID(), user_id: draft.userId, order_id: draft.orderId, message_id: messageId, subject: draft.subject, body: draft.body })))
          .returning([...COLUMNS]);
        return { duplicate: false, notifications: rows.map(toRecord).sort((a, b) => a.seq - b.seq) };
      });
    },

    async list(userId, limit, beforeSeq) {
      const query = db<NotificationRow>("notifications")
        .where("user_id", userId)
        .orderBy("seq", "desc")
        .limit(limit)
        .select(...COLUMNS);
      if (beforeSeq !== undefined) query.where("seq", "<", beforeSeq);
      return (await query).map(toRecord);
    },

    async listAfter(userId, afterSeq, limit) {
      const rows = await db<NotificationRow>("notifications")
        .where("user_id", userId)
        .andWhere("seq", ">", afterSeq)
        .orderBy("seq", "asc")
        .limit(limit)
        .select(...COLUMNS);
      return rows.map(toRecord);
    },

    async latestSeq(userId) {
      const row = (await db("notifications").where("user_id", userId).max({ latest: "seq" }).first()) as { latest: number | null } | undefined;
      return row?.latest ?? 0;
    },

    async changesAfter(afterSeq, limit) {
      // The primary key's index: a range scan from afterSeq, however many users there are.
      const rows: Pick<NotificationRow, "seq" | "user_id">[] = await db<NotificationRow>("notifications").where("seq", ">", afterSeq).orderBy("seq", "asc").limit(limit).select("seq", "user_id");
      return rows.map((row) => ({ seq: Number(row.seq), userId: row.user_id }));
    },

    async latestChangeSeq() {
      const row = (await db("notifications").max({ latest: "seq" }).first()) as { latest: number | string | null } | undefined;
      return Number(row?.latest ?? 0);
    },
  };
}
