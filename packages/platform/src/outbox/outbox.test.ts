import assert from "node:assert/strict";
import { toJson } from "@bufbuild/protobuf";
import { timestampFromDate, TimestampSchema } from "@bufbuild/protobuf/wkt";
import { describe, test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import type { Knex } from "knex";
import { createSilentLogger } from "../logger.js";
import { createMemoryBroker } from "../messaging/memory-broker.js";
import type { MessagePublisher, OutgoingMessage } from "../messaging/ports.js";
import { openEmbeddedTestDatabase } from "@meshwork/testing";
import { runSql, sqlStatement } from "../sql.js";
import { createOutboxRelay, enqueueOutbox, jsonTimestampSql, outboxInsertSql, outboxMigration, outboxRowValues, partitionOf, STATEMENT_TIME } from "./outbox.js";
import { event, sequences } from "./outbox.suite.js";

const log = createSilentLogger();

async function pglite(t: TestScope): Promise<Knex> {
  const database = await openEmbeddedTestDatabase({ migrations: [outboxMigration("0001_outbox")], migrationsTable: "t_migrations" });
  t.onTestFinished(() => database.close());
  await database.migrate();
  return database.knex;
}

describe("transactional outbox", () => {
  test("only committed events are published, each once, in order per aggregate", async (t) => {
    const db = await pglite(t);
    const broker = createMemoryBroker();
    const received: OutgoingMessage[] = [];
    broker.subscribe("shop.test.v1", "#", (message) => received.push(message));
    await db.transaction((trx) => enqueueOutbox(trx, [event("a", 1), event("b", 1), event("a", 2)]));
    await assert.rejects(
      db.transaction(async (trx) => {
        await enqueueOutbox(trx, [event("a", 99)]);
        throw new Error("business rule failed");
      }),
    );
    await db.transaction((trx) => enqueueOutbox(trx, [event("a", 3)]));
    const relay = createOutboxRelay({ db, publisher: broker.publisher, log });
    assert.equal((await relay.stats()).backlog, 4);
    assert.equal(await relay.drainOnce(), 4);
    assert.equal(await relay.drainOnce(), 0);
    const ofA = sequences(received)
      .filter((entry) => entry.aggregateId === "a")
      .map((entry) => entry.sequence);
    assert.deepEqual(ofA, [1, 2, 3]);
    assert.equal(received.length, 4);
    assert.equal(new Set(received.map((message) => message.messageId)).size, 4);
    assert.deepEqual(await relay.stats(), { backlog: 0, oldestAgeMs: 0, published: 4 });
  });

  test("when the broker refuses a batch nothing is marked published, and the next pass publishes it all", async (t) => {
    const db = await pglite(t);
    const delivered: OutgoingMessage[] = [];
    let failNext = true;
    const flaky: MessagePublisher = {
      async publish(messages) {
        if (failNext) {
          failNext = false;
          throw new Error("connection lost");
        }
        delivered.push(...messages);
      },
      async close() {},
    };
    await db.transaction((trx) => enqueueOutbox(trx, [event("x", 1), event("x", 2)]));
    const relay = createOutboxRelay({ db, publisher: flaky, log });
    await assert.rejects(relay.drainOnce(), /connection lost/);
    assert.equal((await relay.stats()).backlog, 2);
    assert.equal(await relay.drainOnce(), 2);
    assert.deepEqual(
      sequences(delivered).map((entry) => entry.sequence),
      [1, 2],
    );
  });

  test("the running relay publishes soon after a nudge and stops cleanly", async (t) => {
    const db = await pglite(t);
    const broker = createMemoryBroker();
    const arrived = new Promise<OutgoingMessage>((resolve) => broker.subscribe("shop.test.v1", "thing.*", resolve));
    const relay = createOutboxRelay({ db, publisher: broker.publisher, log, pollIntervalMs: 60_000 });
    relay.start();
    await db.transaction((trx) => enqueueOutbox(trx, [event("n", 1)]));
    relay.nudge();
    assert.equal(sequences([await arrived])[0]?.sequence, 1);
    await relay.stop();
  });

  test("a time written by jsonTimestampSql is the text protobuf's JSON mapping gives the Date read back", async (t) => {
    const db = await pglite(t);
    // Whole seconds (no fraction in the JSON), sub-millisecond digits that must be dropped, not rounded, and another offset.
    const times = ["2026-03-01 10:20:30+00", "2026-03-01 10:20:30.000999+00", "2026-03-01 10:20:30.123456+00", "2026-12-31 23:59:59.999999+00", "2026-06-15 08:00:00.5+02"];
    for (const time of times) {
      const { rows } = await runSql<{ at: Date; text: string }>(db, sqlStatement("t_json_timestamp", `select $1::timestamptz as at, ${jsonTimestampSql("$1::timestamptz")} as text`), [time]);
      const [row] = rows;
      assert.ok(row, time);
      assert.equal(row.text, toJson(TimestampSchema, timestampFromDate(new Date(row.at))), time);
    }
  });

  test("a row written with a stamped body carries the statement's time wherever the body had STATEMENT_TIME", async (t) => {
    const db = await pglite(t);
    const stand = STATEMENT_TIME.toISOString();
    // Free text that spells the stand-in, bare or quoted, is left as it is: only whole member values are times.
    const note = `shipped "${stand}" or ${stand}`;
    const body = Buffer.from(JSON.stringify({ placedAt: stand, note, history: [{ at: "2020-01-01T00:00:00Z" }, { at: stand }] }));
    const insert = sqlStatement("t_outbox_stamped", outboxInsertSql(1, "true", { stampBody: true }), "insert");
    await runSql(db, insert, outboxRowValues({ ...event("s", 1), body }));
    const [row] = (await db("outbox").where({ aggregate_id: "s" }).select("body", "created_at")) as { body: Uint8Array; created_at: Date }[];
    const written = toJson(TimestampSchema, timestampFromDate(new Date(row!.created_at)));
    assert.deepEqual(JSON.parse(Buffer.from(row!.body).toString()), { placedAt: written, note, history: [{ at: "2020-01-01T00:00:00Z" }, { at: written }] });
  });

  test("partitions are stable per aggregate and spread", () => {
    assert.equal(partitionOf("order-1"), partitionOf("order-1"));
    const used = new Set(Array.from({ length: 200 }, (_, index) => partitionOf(`order-${index}`)));
    assert.ok(used.size > 10, `200 aggregates use ${used.size} partitions`);
  });
});
