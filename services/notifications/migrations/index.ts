import type { Knex, Migration } from "@meshwork/platform";

const statements = (db: Knex, sql: readonly string[]): Promise<void> =>
  sql.reduce<Promise<void>>((previous, statement) => previous.then(() => db.raw(statement).then(() => undefined)), Promise.resolve());

/** The notifications schema, and nobody else's: the inbox of handled events and the notifications they made. */
export const migrations: readonly Migration[] = [
  {
    name: "0001_inbox_and_notifications",
    up: (db) =>
      statements(db, [
        // One row per event ever handled, kept for good: a redelivery can come
        // at any time (an outbox batch published again, a dead letter moved
        // back), and the row is what makes it harmless.
        `create table inbox (
           message_id text collate "C" primary key,
           received_at timestamptz not null default now()
         )`,
        `create table notifications (
           seq bigserial primary key,
           id text collate "C" not null unique,
           user_id text not null,
           order_id text not null default '',
           message_id text collate "C" not null references inbox (message_id),
           subject text not null,
           body text not null,
           created_at timestamptz not null default now()
         )`,
        `create index notifications_by_user on notifications (user_id, seq)`,
      ]),
    down: (db) => statements(db, ["drop table notifications", "drop table inbox"]),
  },
];
