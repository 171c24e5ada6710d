import { eventStoreMigration, outboxMigration, type Knex, type Migration } from "@meshwork/platform";

/**
 * order_history's step names as event types, as SQL. Written out rather than
 * imported from src/order-events.ts: a migration must keep meaning what it
 * meant when it ran, whatever the code later calls things.
 */
const STEP_TYPE_SQL = `case h.step
  when 'stock_reserved' then 'StockReserved' when 'stock_refused' then 'StockRefused'
  when 'payment_authorized' then 'PaymentAuthorized' when 'payment_declined' then 'PaymentDeclined'
  when 'payment_voided' then 'PaymentVoided' when 'stock_released' then 'StockReleased'
  when 'order_confirmed' then 'OrderConfirmed' when 'order_rejected' then 'OrderRejected'
  when 'order_failed' then 'OrderFailed' end`;

const statements = (db: Knex, sql: readonly string[]): Promise<void> =>
  sql.reduce<Promise<void>>((previous, statement) => previous.then(() => db.raw(statement).then(() => undefined)), Promise.resolve());

/** The orders schema, and nobody else's: orders, their saga state and history, the outbox. */
export const migrations: readonly Migration[] = [
  {
    name: "0001_orders_and_sagas",
    up: (db) =>
      statements(db, [
        `create table orders (
           id text collate "C" primary key,
           user_id text not null,
           idempotency_key text not null,
           fingerprint text not null,
           request_id text not null,
           status text not null check (status in ('pending', 'confirmed', 'rejected', 'failed')),
           reason text not null default '',
           lines jsonb not null,
           total_minor bigint,
           currency char(3),
           card_token text not null,
           created_at timestamptz not null default now(),
           updated_at timestamptz not null default now(),
           unique (user_id, idempotency_key)
         )`,
        `create index orders_by_user on orders (user_id, created_at desc, id desc)`,
        `create table sagas (
           order_id text collate "C" primary key references orders (id),
           step text not null check (step in ('reserve_stock', 'authorize_payment', 'compensate', 'done')),
           attempts integer not null default 0,
           next_attempt_at timestamptz not null default now(),
           authorize_attempted boolean not null default false,
           outcome_status text check (outcome_status in ('rejected', 'failed')),
           outcome_reason text not null default '',
           lease_owner text,
           lease_until timestamptz,
           updated_at timestamptz not null default now()
         )`,
        `create index sagas_due on sagas (next_attempt_at) where step <> 'done'`,
        `create table order_history (
           id bigserial primary key,
           order_id text collate "C" not null references orders (id),
           step text not null,
           detail text not null default '',
           occurred_at timestamptz not null default now()
         )`,
        `create index order_history_by_order on order_history (order_id, id)`,
      ]),
    down: (db) => statements(db, ["drop table order_history", "drop table sagas", "drop table orders"]),
  },
  outboxMigration("0002_outbox"),
  {
    // The saga runs after PlaceOrder has returned, in whichever instance claims it:
    // the placement's trace context is kept with it so its steps join the order's trace.
    name: "0003_saga_trace_context",
    up: (db) => statements(db, [`alter table sagas add column trace_context jsonb not null default '{}'`]),
    down: (db) => statements(db, ["alter table sagas drop column trace_context"]),
  },
  {
    // The card token is no longer kept in clear (security issue 13): new rows
    // hold it sealed (AES-256-GCM, adapters/card-token-cipher.ts) in
    // card_token_sealed, and card_token is ''. A migration has no key, so
    // here only the tokens no saga needs any more are erased (orders past the
    // payment step: compensating, done, or final); the few still needed are
    // sealed by the service when it starts (sealClearCardTokens), before any
    // saga runs. Nothing a saga needs is lost.
    name: "0004_card_token_sealed",
    up: (db) =>
      statements(db, [
        `alter table orders add column card_token_sealed text not null default ''`,
        `update orders set card_token = '' where status <> 'pending' or id in (select order_id from sagas where step in ('compensate', 'done'))`,
      ]),
    down: (db) => statements(db, ["alter table orders drop column card_token_sealed"]),
  },
  {
    // API v2 (shop.orders.v2): an order says where it ships and how fast.
    // Nullable, and nothing is backfilled: orders placed before, and through
    // v1 from now on, have no address, and v1 answers exactly as before.
    name: "0005_order_shipping",
    up: (db) =>
      statements(db, [
        `alter table orders add column shipping_address jsonb`,
        `alter table orders add column delivery_option text check (delivery_option in ('standard', 'express'))`,
        // Both or neither: a v2 order has both, a v1 order none.
        `alter table orders add constraint orders_shipping_complete check ((shipping_address is null) = (delivery_option is null))`,
      ]),
    down: (db) => statements(db, ["alter table orders drop constraint orders_shipping_complete", "alter table orders drop column delivery_option", "alter table orders drop column shipping_address"]),
  },
  {
    // The order becomes an event stream (src/order-events.ts): the events
    // table, and every existing order written into its stream `order-<id>`,
    // so nothing of what happened to it is lost. The old tables knew less
    // than an event does, so what this writes is schema 1: OrderPlaced from
    // the order's row (its lines as the row has them, priced if stock was
    // reserved), then one event per row of order_history in its order, with
    // the row's detail text (StockReserved also with the row's priced lines);
    // the service's upcasters read them as schema 2. Each event keeps the
    // time it happened. The orders row is from now on a view of the stream:
    // it gets the stream's version, and its updated_at becomes the time of
    // the stream's last event, as the fold says.
    name: "0006_order_event_streams",
    up: async (db) => {
      await eventStoreMigration("events").up(db);
      await statements(db, [
        `alter table orders add column version integer not null default 0`,
        `insert into events (stream_id, version, type, schema_version, data, metadata, recorded_at)
         select stream_id, version, type, 1, data, '{"migratedBy": "0006_order_event_streams"}'::jsonb, recorded_at
           from (
             select 'order-' || o.id as stream_id, 1 as version, 'OrderPlaced' as type,
                    jsonb_build_object('userId', o.user_id, 'idempotencyKey', o.idempotency_key, 'fingerprint', o.fingerprint,
                                       'requestId', o.request_id, 'lines', o.lines, 'detail', '',
                                       'shipping', case when o.shipping_address is null then null
                                                   else jsonb_build_object('address', o.shipping_address, 'delivery', o.delivery_option) end) as data,
                    o.created_at as recorded_at, 0::bigint as history_id
               from orders o
             union all
             select 'order-' || h.order_id,
                    1 + row_number() over (partition by h.order_id order by h.id),
                    ${STEP_TYPE_SQL},
                    case when h.step = 'stock_reserved' then jsonb_build_object('detail', h.detail, 'lines', o.lines)
                         else jsonb_build_object('detail', h.detail) end,
                    h.occurred_at, h.id
               from order_history h join orders o on o.id = h.order_id
              where h.step <> 'order_placed'
           ) migrated
          order by recorded_at, stream_id, version`,
        `update orders o set version = e.version, updated_at = e.recorded_at
           from (select distinct on (stream_id) stream_id, version, recorded_at from events order by stream_id, version desc) e
          where e.stream_id = 'order-' || o.id`,
      ]);
    },
    down: (db) => statements(db, ["alter table orders drop column version", "drop table projection_checkpoints", "drop table events"]),
  },
  {
    // The sales view (src/sales-view.ts), an asynchronous projection of the
    // order streams with its checkpoint "sales" in projection_checkpoints:
    // units and revenue per product, currency and hour of confirmation (UTC
    // hours, cut by the service), and
    // orders by final state per hour. The `_rebuild` twins are the shadow
    // tables a rebuild fills (checkpoint "sales:rebuild") before swapping;
    // they are empty except while a rebuild is under way or interrupted.
    // Nothing is backfilled here: the projection reads every stream from the
    // start on its first run, migrated orders (schema 1) included.
    name: "0007_sales_view",
    up: (db) =>
      statements(db, [
        `create table sales_by_product_hour (
           hour timestamptz not null,
           product_id text collate "C" not null,
           currency char(3) not null,
           units bigint not null,
           revenue_minor bigint not null,
           primary key (hour, product_id, currency)
         )`,
        `create table sales_outcomes_by_hour (
           hour timestamptz not null,
           outcome text not null check (outcome in ('confirmed', 'rejected', 'failed')),
           orders bigint not null,
           primary key (hour, outcome)
         )`,
        `create table sales_by_product_hour_rebuild (like sales_by_product_hour including all)`,
        `create table sales_outcomes_by_hour_rebuild (like sales_outcomes_by_hour including all)`,
      ]),
    down: (db) =>
      statements(db, [
        "drop table sales_outcomes_by_hour_rebuild",
        "drop table sales_by_product_hour_rebuild",
        "drop table sales_outcomes_by_hour",
        "drop table sales_by_product_hour",
        "delete from projection_checkpoints where name in ('sales', 'sales:rebuild')",
      ]),
  },
];
