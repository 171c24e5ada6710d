import type { NotificationDraft, NotificationRecord } from "./notifications.js";

/** A notification recorded, as the change feed sees it. */
export interface NotificationChange {
  readonly seq: number;
  readonly userId: string;
}

/** What recording an event's notifications came to. */
export interface RecordOutcome {
  /** True when the message id was already in the inbox: nothing was written. */
  readonly duplicate: boolean;
  /** The notifications written (empty for a duplicate). */
  readonly notifications: readonly NotificationRecord[];
}

/**
 * Where notifications and the inbox live. Adapters: knex (PostgreSQL or
 * PGlite) and memory; one behaviour suite (test/notification-store.behaviour.ts)
 * holds them to the same semantics.
 */
export interface NotificationStore {
  /**
   * In one transaction: enters `messageId` in the inbox and records the
   * drafts. When the id is already there (a redelivery, or the same event
   * being handled by another instance right now) nothing is written and the
   * outcome says duplicate. If anything fails, nothing is written either,
   * so a retry starts from a clean slate.
   */
  record(messageId: string, drafts: readonly NotificationDraft[]): Promise<RecordOutcome>;
  /** The user's notifications, newest first, only those before `beforeSeq` when given. */
  list(userId: string, limit: number, beforeSeq: number | undefined): Promise<NotificationRecord[]>;
  /** The user's notifications after `afterSeq`, oldest first. */
  listAfter(userId: string, afterSeq: number, limit: number): Promise<NotificationRecord[]>;
  /** The largest seq of the user's notifications, 0 when there are none. */
  latestSeq(userId: string): Promise<number>;
  /**
   * Every user's notifications after `afterSeq`, oldest first, as (seq, user)
   * only: the change feed's one query for all of an instance's streams.
   */
  changesAfter(afterSeq: number, limit: number): Promise<NotificationChange[]>;
  /** The largest seq of all notifications, 0 when there are none. */
  latestChangeSeq(): Promise<number>;
}
