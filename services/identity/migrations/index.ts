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
  {
    // Private keys at rest only as ciphertext under a key-encryption key kept
    // outside the database. A migration cannot encrypt (it has no KEK), so rows
    // written before stay in clear here and the service seals them at start
    // (openKeyRing); the constraint admits exactly one of the two forms.
    // activate_at / retire_at schedule a rotation: published from insertion,
    // signing from activate_at, unpublished from retire_at.
    name: "0002_signing_keys_sealed_and_scheduled",
    up: (db) =>
      statements(db, [
        `alter table signing_keys alter column private_jwk drop not null`,
        `alter table signing_keys add column sealed_private_key text`,
        `alter table signing_keys add column kek_id text collate "C"`,
        `alter table signing_keys add column activate_at timestamptz`,
        `alter table signing_keys add column retire_at timestamptz`,
        `update signing_keys set activate_at = created_at`,
        `alter table signing_keys alter column activate_at set not null`,
        `alter table signing_keys alter column activate_at set default now()`,
        `alter table signing_keys add constraint signing_keys_one_form check ((private_jwk is null) <> (sealed_private_key is null) and (sealed_private_key is null) = (kek_id is null))`,
      ]),
    down: (db) =>
      statements(db, [
        `alter table signing_keys drop constraint signing_keys_one_form`,
        `alter table signing_keys drop column retire_at`,
        `alter table signing_keys drop column activate_at`,
        `alter table signing_keys drop column kek_id`,
        `alter table signing_keys drop column sealed_private_key`,
      ]),
  },
];
