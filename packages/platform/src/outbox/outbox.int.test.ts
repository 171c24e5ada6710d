/** The outbox relay on a real PostgreSQL and RabbitMQ: several relays at once. */
import assert from "node:assert/strict";
import { describe, test } from "vitest";
import type { Knex } from "knex";
import { amqpUrl, collectFromExchange, connectRabbit, createTestDatabase, uniqueName, type TestScope } from "@meshwork/testing";
import { openDatabase } from "../database.js";
import { createSilentLogger } from "../logger.js";
import { createAmqpPublisher } from "../messaging/amqp-publisher.js";
import { createOutboxRelay, enqueueOutbox, outboxMigration } from "./outbox.js";
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

describe("transactional outbox on PostgreSQL and RabbitMQ", () => {
  test("on PostgreSQL and RabbitMQ, three relays at once publish every row exactly once, in order per aggregate", async (t) => {
    const db = await postgres(t);
    if (!db) return;
    const connection = await connectRabbit(t);
    if (!connection) return;
    const exchange = uniqueName("outbox");
    const collector = await collectFromExchange(connection, exchange);
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
    const published = await Promise.all(relays.map(async (relay) => (await relay.stats()).published));
    assert.ok(published.filter((count) => count > 0).length >= 2, `work was shared: ${published.join(", ")}`);
    assert.equal(messages[0]?.headers["schema-version"], 1);
  });
});
