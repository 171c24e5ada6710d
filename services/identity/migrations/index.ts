import type { Knex, Migration } from "@meshwork/platform";

const statements = (db: Knex, sql: readonly string[]): Promise<void> =>
  sql.reduce<Promise<void>>((previous, statement) => previous.then(() => db.raw(statement).then(() => undefined)), Promise.resolve());

/** Identity's schema, and nobody else's. */
export const migrations: readonly Migration[] = [
  {
    name: "0001_users_and_signing_keys",
    up: (db) =>
      statements(db, [
        `create table users (
           id uuid primary key,
           email text collate "C" not null,
           display_name text not null,
           password_hash text not null,
           created_at timestamptz not null default now(),
           updated_at timestamptz not null default now()
         )`,
        // One account per email, also when sign-ups race: the index decides, not a prior lookup.
        `create unique index users_email_unique on users (email)`,
        `create table signing_keys (
           kid text collate "C" primary key,
           private_jwk text not null,
           active boolean not null default false,
           created_at timestamptz not null default now()
         )`,
        // At most one active key: instances starting together on an empty database agree on one.
        `create unique index signing_keys_one_active on signing_keys (active) where active`,
      ]),
    down: (db) => statements(db, ["drop table signing_keys", "drop table users"]),
  },
];
