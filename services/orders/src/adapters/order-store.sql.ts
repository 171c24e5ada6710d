/**
 * The order store's hot statements: the ones every order runs (placement,
 * the saga's claim and each of its decisions, the saga's read of a stream).
 * Each is SQL of fixed text, prepared once per connection on PostgreSQL
 * (runSql): events and timeline entries go as jsonb arrays, so the text does
 * not depend on how many there are. The rest of the store (listing, reading
 * the view, admin) is knex.
 */
import { outboxInsertSql, sqlStatement, type EventStore, type SqlStatement } from "@meshwork/platform";

/** What a claim returns of the saga rows it leased. */
const SAGA_COLUMNS = "order_id, step, attempts, authorize_attempted, outcome_status, outcome_reason, lease_owner, trace_context";

/** An append's returned rows as one json value. */
const APPENDED_JSON = "(select json_agg(json_build_object('position', position, 'version', version, 'recorded_at', recorded_at)) from appended)";

export interface OrderStoreSql {
  /**
   * $1 id, $2 user_id, $3 idempotency_key, $4 fingerprint, $5 request_id,
   * $6 lines (json), $7 card_token_sealed, $8 shipping_address (json or null),
   * $9 delivery_option, $10 trace_context (json), $11 stream id, $12 expected
   * version (0), $13 events (json), $14 to $22 the outbox row announcing the
   * placement (outboxRowValues, its body built with STATEMENT_TIME for the
   * events' time), written only with the order; $23 the owner the new saga
   * is leased to (null: none), $24 for how many ms. Nothing is written when
   * the key is taken or the stream already exists (at_expected_version false).
   */
  readonly place: SqlStatement;
  /** $1 owner, $2 lease ms, $3 how many: due sagas, oldest due first. */
  readonly claimDue: SqlStatement;
  /** $1 owner, $2 lease ms, $3 order id: that order's saga, if due. */
  readonly claimOne: SqlStatement;
  /**
   * A saga decision. $1 order id, $2 lease owner, $3 stream id, $4 expected
   * version, $5 events (json), $6 step, $7 attempts, $8 authorize_attempted,
   * $9 outcome_status, $10 outcome_reason, $11 delay ms, $12 keep the lease,
   * $13 lease ms, $14 erase the card token, $15 timeline entries (json:
   * [{step, detail}]); `withView` also: $16 status, $17 reason, $18 lines
   * (json), $19 total_minor, $20 currency, $21 version, $22 user_id,
   * $23 idempotency_key, $24 fingerprint, $25 request_id, $26
   * shipping_address (json or null), $27 delivery_option; `withOutbox` (a
   * change of status) also $28 to $36, the outbox row announcing it (its
   * body built with STATEMENT_TIME for the events' time).
   */
  readonly apply: { readonly withoutView: SqlStatement; readonly withView: SqlStatement; readonly withOutbox: SqlStatement };
  /** $1 order id, $2 owner: frees the lease. */
  readonly releaseLease: SqlStatement;
  /** $1 id: what the saga needs of the row beside the stream (its sealed token). */
  readonly cardToken: SqlStatement;
}

export function orderStoreSql(events: EventStore): OrderStoreSql {
  const placeAppend = events.appendSql({ streamId: "$11", expectedVersion: "$12", events: "$13" });
  const applyAppend = events.appendSql({ streamId: "$3", expectedVersion: "$4", events: "$5" });

  const claim = (name: string, due: string) =>
    sqlStatement(
      name,
      `update sagas set lease_owner = $1, lease_until = now() + $2::float8 * interval '1 millisecond'
        where order_id in (
          select order_id from sagas
           where step <> 'done' and next_attempt_at <= now() and (lease_until is null or lease_until < now()) and ${due}
           order by next_attempt_at
           limit $3
           for update skip locked)
       returning ${SAGA_COLUMNS}`,
    );

  // Every write depends on the saga update having matched, and the update on the stream being at the expected version.
  const apply = (name: string, withView: boolean, withOutbox = false) =>
    sqlStatement(
      name,
      `with saga as (
         update sagas set step = $6, attempts = $7, authorize_attempted = $8, outcome_status = $9, outcome_reason = $10,
                next_attempt_at = now() + $11::float8 * interval '1 millisecond',
                lease_owner = case when $12::boolean then $2 end,
                lease_until = case when $12::boolean then now() + $13::float8 * interval '1 millisecond' end,
                updated_at = now()
          where order_id = $1 and lease_owner = $2 and lease_until > now() and ${applyAppend.atExpectedVersion}
         returning ${SAGA_COLUMNS}
       ),
       appended as (${applyAppend.insert("exists (select 1 from saga)")}),
       viewed as (
         update orders set ${
           withView
             ? `status = $16, reason = $17, lines = $18::jsonb, total_minor = $19, currency = $20, version = $21, user_id = $22, idempotency_key = $23,
                fingerprint = $24, request_id = $25, shipping_address = $26::jsonb, delivery_option = $27, updated_at = now(),`
             : ""
         }
                card_token = case when $14::boolean then '' else card_token end,
                card_token_sealed = case when $14::boolean then '' else card_token_sealed end
          where id = $1 and ${withView ? "" : "$14::boolean and "}exists (select 1 from saga)
       ),
       timeline as (
         insert into order_history (order_id, step, detail)
         select $1, entry->>'step', entry->>'detail' from jsonb_array_elements($15::jsonb) with ordinality as entries (entry, n)
          where exists (select 1 from saga)
          order by n
       )${
         withOutbox
           ? `,
       outboxed as (${outboxInsertSql(28, "exists (select 1 from appended)", { stampBody: true })})`
           : ""
       }
       select (select row_to_json(written) from saga as written) as saga,
              ${APPENDED_JSON} as appended,
              exists (select 1 from sagas where order_id = $1 and lease_owner = $2 and lease_until > now()) as lease_held,
              ${applyAppend.atExpectedVersion} as at_expected_version`,
      "update",
    );

  return {
    // The order row, its saga, its first event, its timeline and its outbox row in one
    // statement, atomic without BEGIN and COMMIT: every write depends on the order row,
    // and the row on the stream not existing yet. The unique (user_id, idempotency_key)
    // makes a concurrent duplicate wait for the first statement and then insert
    // nothing: exactly one order per key.
    place: sqlStatement(
      "orders_place",
      `with placed as (
         insert into orders (id, user_id, idempotency_key, fingerprint, request_id, status, lines, card_token, card_token_sealed, shipping_address, delivery_option, version)
         select $1::text, $2::text, $3::text, $4::text, $5::text, 'pending', $6::jsonb, '', $7::text, $8::jsonb, $9::text, 1
          where ${placeAppend.atExpectedVersion}
         on conflict (user_id, idempotency_key) do nothing
         returning id
       ),
       saga as (
         insert into sagas (order_id, step, trace_context, lease_owner, lease_until)
         select id, 'reserve_stock', $10::jsonb, $23::text, now() + $24::float8 * interval '1 millisecond' from placed
         returning ${SAGA_COLUMNS}
       ),
       appended as (${placeAppend.insert("exists (select 1 from placed)")}),
       timeline as (insert into order_history (order_id, step, detail) select id, 'order_placed', '' from placed),
       outboxed as (${outboxInsertSql(14, "exists (select 1 from appended)", { stampBody: true })})
       select (select count(*) from placed)::integer as created, ${APPENDED_JSON} as appended, (select row_to_json(leased) from saga as leased) as saga,
              ${placeAppend.atExpectedVersion} as at_expected_version`,
      "insert",
    ),
    claimDue: claim("orders_claim_due", "true"),
    claimOne: claim("orders_claim_one", "order_id = $4"),
    apply: {
      withoutView: apply("orders_apply_without_view", false),
      withView: apply("orders_apply_with_view", true),
      withOutbox: apply("orders_apply_with_outbox", true, true),
    },
    releaseLease: sqlStatement("orders_release_lease", "update sagas set lease_owner = null, lease_until = null where order_id = $1 and lease_owner = $2"),
    cardToken: sqlStatement("orders_card_token", "select id, card_token, card_token_sealed from orders where id = $1"),
  };
}
