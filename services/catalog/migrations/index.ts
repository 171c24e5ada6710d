import type { Knex, Migration } from "@meshwork/platform";

const statements = (db: Knex, sql: readonly string[]): Promise<void> =>
  sql.reduce<Promise<void>>((previous, statement) => previous.then(() => db.raw(statement).then(() => undefined)), Promise.resolve());

/** The catalog's schema, and nobody else's. */
export const migrations: readonly Migration[] = [
  {
    name: "0001_products_and_reservations",
    up: (db) =>
      statements(db, [
        `create table products (
           id text collate "C" primary key,
           name text not null,
           description text not null default '',
           price_minor bigint not null check (price_minor >= 0),
           currency char(3) not null,
           stock integer not null check (stock >= 0),
           categories text[] not null default '{}',
           image_url text not null default '',
           updated_at timestamptz not null default now()
         )`,
        `create table reservations (
           order_id text collate "C" primary key,
           state text not null check (state in ('reserved', 'released')),
           created_at timestamptz not null default now(),
           updated_at timestamptz not null default now()
         )`,
        `create table reservation_lines (
           order_id text collate "C" not null references reservations (order_id) on delete cascade,
           product_id text collate "C" not null references products (id),
           quantity integer not null check (quantity > 0),
           unit_price_minor bigint not null,
           currency char(3) not null,
           primary key (order_id, product_id)
         )`,
      ]),
    down: (db) => statements(db, ["drop table reservation_lines", "drop table reservations", "drop table products"]),
  },
];
