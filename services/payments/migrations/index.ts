import type { Knex, Migration } from "@meshwork/platform";

const statements = (db: Knex, sql: readonly string[]): Promise<void> =>
  sql.reduce<Promise<void>>((previous, statement) => previous.then(() => db.raw(statement).then(() => undefined)), Promise.resolve());

/** The payments schema, and nobody else's. */
export const migrations: readonly Migration[] = [
  {
    name: "0001_payments",
    up: (db) =>
      statements(db, [
        // One row per order: the order id is the idempotency key, so the
        // primary key is what serialises concurrent authorizations.
        `create table payments (
           order_id text collate "C" primary key,
           id text not null unique,
           status text not null check (status in ('pending', 'authorized', 'declined', 'voided')),
           amount_minor bigint check (amount_minor > 0),
           currency text check (currency ~ '^[A-Z]{3}$'),
           -- SHA-256 over order id, amount, currency and the SHA-256 of the card
           -- token; the token itself is never stored.
           request_fingerprint text,
           decline_reason text not null default '',
           claim_id text,
           claim_expires_at timestamptz,
           created_at timestamptz not null default now(),
           updated_at timestamptz not null default now(),
           -- Only a void recorded before any authorization has no request.
           check ((request_fingerprint is null) = (amount_minor is null) and (amount_minor is null) = (currency is null)),
           check (request_fingerprint is not null or status = 'voided'),
           check ((status = 'pending') = (claim_id is not null) and (claim_id is null) = (claim_expires_at is null)),
           check ((status = 'declined') = (decline_reason <> ''))
         )`,
      ]),
    down: (db) => statements(db, ["drop table payments"]),
  },
];
