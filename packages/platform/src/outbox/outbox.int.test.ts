/** The outbox relay on a real PostgreSQL and RabbitMQ: several relays at once. */
import assert from "node:assert/strict";
import { describe, test } from "vitest";
import type { Knex } from "knex";
import { amqpUrl, collectFromExchange, connectRabbit, createTestDatabase, uniqueName, type TestScope } from "@meshwork/testing";
import { openDatabase } from "../database.js";
import { createSilentLogger } from "../logger.js";
import { createAmqpPublisher } from "../messaging/amqp-publisher.js";
import { createOutboxRelay, enqueueOutbox, outboxMigration, partitionOf } from "./outbox.js";
import { event, sequences } from "./outbox.suite.js";

const log = createSilentLogger();

async function postgres(t: TestScope): Promise<Knex | undefined> {
  const url = await createTestDatabase(t, "outbox");
  if (!url) return undefined;
  const database = await openDatabase({ url, migrations: [outboxMigration("0001_outbox")], migrationsTable: "t_migrations", log, poolMax: 12 });
  t.onTestFinished(() => database.close());
  await database.migrate();
  return database.knex;
}

/** An outbox database, and a queue collecting what reaches a new exchange; undefined when either server is missing. */
async function setUp(t: TestScope) {
  const db = await postgres(t);
  if (!db) return undefined;
  const connection = await connectRabbit(t);
  if (!connection) return undefined;
  const exchange = uniqueName("outbox");
  return { db, exchange, collector: await collectFromExchange(connection, exchange) };
}

describe("transactional outbox on PostgreSQL and RabbitMQ", () => {
  test("on PostgreSQL and RabbitMQ, three relays at once publish every row exactly once, in order per aggregate", async (t) => {
    const setup = await setUp(t);
    if (!setup) return;
    const { db, exchange, collector } = setup;
    const aggregates = 40;
    const perAggregate = 10;
    for (let sequence = 1; sequence <= perAggregate; sequence++) {
      await db.transaction((trx) =>
        enqueueOutbox(
          trx,
          Array.from({ length: aggregates }, (_, index) => event(`agg-${index}`, sequence, exchange)),
        ),
      );
    }
    const publishers = await Promise.all([0, 1, 2].map(() => createAmqpPublisher({ url: amqpUrl(), log, exchanges: [exchange] })));
    t.onTestFinished(async () => {
      await Promise.all(publishers.map((publisher) => publisher.close()));
    });
    const relays = publishers.map((publisher) => createOutboxRelay({ db, publisher, log, batchSize: 25 }));
    // Race the three relays until the outbox is empty.
    let rounds = 0;
    while ((await relays[0]!.stats()).backlog > 0 && rounds++ < 100) {
      await Promise.all(relays.map((relay) => relay.drainOnce()));
    }
    const total = aggregates * perAggregate;
    const messages = await collector.waitFor(total);
    assert.equal(messages.length, total, "no row published twice");
    assert.equal(new Set(messages.map((message) => message.messageId)).size, total);
    const byAggregate = new Map<string, number[]>();
    for (const entry of sequences(messages)) byAggregate.set(entry.aggregateId, [...(byAggregate.get(entry.aggregateId) ?? []), entry.sequence]);
    for (const [aggregate, seen] of byAggregate)
      assert.deepEqual(
        seen,
        Array.from({ length: perAggregate }, (_, index) => index + 1),
        aggregate,
      );
    // How the passes fell between the relays is timing (one relay can take every pass on a loaded
    // machine): the test below shows deterministically that a partition one relay holds is left to it.
    const published = await Promise.all(relays.map(async (relay) => (await relay.stats()).published));
    assert.equal(
      published.reduce((sum, count) => sum + count, 0),
      total,
      `the relays' counts add up to the rows: ${published.join(", ")}`,
    );
    assert.equal(messages[0]?.headers["schema-version"], 1);
  });

  test("a partition another relay holds is left to it: the rest is published meanwhile, its rows once it is let go", async (t) => {
    const setup = await setUp(t);
    if (!setup) return;
    const { db, exchange, collector } = setup;
    const aggregates = Array.from({ length: 24 }, (_, index) => `agg-${index}`);
    await db.transaction((trx) =>
      enqueueOutbox(
        trx,
        aggregates.map((aggregate) => event(aggregate, 1, exchange)),
      ),
    );
    const held = partitionOf(aggregates[0]!);
    const heldAggregates = aggregates.filter((aggregate) => partitionOf(aggregate) === held);
    const publisher = await createAmqpPublisher({ url: amqpUrl(), log, exchanges: [exchange] });
    t.onTestFinished(() => publisher.close());
    const lockNamespace = 4242;
    const relay = createOutboxRelay({ db, publisher, log, lockNamespace });

    // "Another relay" mid-pass on one partition: a transaction holding that partition's advisory lock.
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let holding!: () => void;
    const isHolding = new Promise<void>((resolve) => {
      holding = resolve;
    });
    const other = db.transaction(async (trx) => {
      await trx.raw("select pg_advisory_xact_lock(?, ?)", [lockNamespace, held]);
      holding();
      await released;
    });
    await isHolding;
    try {
      assert.equal(await relay.drainOnce(), aggregates.length - heldAggregates.length, "every partition but the held one");
      assert.equal(await relay.drainOnce(), 0, "the held partition is not touched");
      assert.equal((await relay.stats()).backlog, heldAggregates.length);
    } finally {
      release();
      await other;
    }
    assert.equal(await relay.drainOnce(), heldAggregates.length, "the held partition's rows, once it is let go");
    const messages = await collector.waitFor(aggregates.length);
    assert.deepEqual(
      sequences(messages.slice(-heldAggregates.length))
        .map((entry) => entry.aggregateId)
        .sort(),
      [...heldAggregates].sort(),
    );
  });
});
