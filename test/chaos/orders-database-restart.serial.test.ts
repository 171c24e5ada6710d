/**
 * Chaos: the orders service's PostgreSQL crashes and restarts (pg_ctl stop
 * -m immediate, then start) while shoppers place orders through the gateway.
 * Each shopper keeps one idempotency key per order and tries again with the
 * same key until it is acknowledged, as a client of an idempotent API should.
 *
 * Invariants: no order lost (every acknowledged order exists and reaches a
 * final state, its events are published) and none duplicated (one order per
 * key, and a retried key answers the same order id).
 *
 * Serial: it runs a PostgreSQL server of its own and restarts it under load.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "vitest";
import { ConnectError } from "@connectrpc/connect";
import { OrderStatus } from "@meshwork/contracts/shop/orders/v1/orders";
import pg from "pg";
import { ms, report, shopper } from "./chaos-kit.js";
import { meshBasePort, startTestMesh } from "../e2e/test-mesh.js";
import { startPrivatePostgres } from "./private-postgres.js";

const PRODUCTS = ["MW-PENCIL-SET", "MW-FIELD-NOTEBOOK", "MW-CANVAS-TOTE"];
const SHOPPERS = 4;

test("the orders database restarted under load: no order lost or duplicated", { timeout: 240_000 }, async (t) => {
  const postgres = await startPrivatePostgres(t, ["orders"]);
  const mesh = await startTestMesh(t, {
    basePort: meshBasePort(),
    databaseUrls: { orders: postgres.url("orders") },
    env: {
      IDENTITY_SCRYPT_N: "1024",
      ORDERS_SAGA_POLL_MS: "100",
      MESHWORK_LIVE_GATEWAY_RATE_LIMIT_PER_ADDRESS_RPS: "100000",
      MESHWORK_LIVE_GATEWAY_RATE_LIMIT_PER_ADDRESS_BURST: "100000",
      MESHWORK_LIVE_GATEWAY_RATE_LIMIT_PER_USER_RPS: "100000",
      MESHWORK_LIVE_GATEWAY_RATE_LIMIT_PER_USER_BURST: "100000",
    },
  });
  if (!mesh) return;
  try {
    const shop = await shopper(mesh.gatewayPort);
    const acknowledged = new Map<string, string>();
    const answersPerKey = new Map<string, Set<string>>();
    const productOfKey = new Map<string, string>();
    const ackTimes: number[] = [];
    const refusals: Record<string, number> = {};
    const stop = new AbortController();

    const placeUntilAcknowledged = async (key: string, productId: string): Promise<void> => {
      productOfKey.set(key, productId);
      for (let attempt = 0; ; attempt += 1) {
        try {
          const id = await shop.placeOrder(productId, key);
          ackTimes.push(performance.now());
          acknowledged.set(key, id);
          answersPerKey.set(key, (answersPerKey.get(key) ?? new Set()).add(id));
          return;
        } catch (error) {
          const code = error instanceof ConnectError ? String(error.code) : "client";
          refusals[code] = (refusals[code] ?? 0) + 1;
          if (attempt >= 200) throw error;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    };
    const shoppers = Array.from({ length: SHOPPERS }, async (_, index) => {
      let n = 0;
      while (!stop.signal.aborted) {
        await placeUntilAcknowledged(`restart-${randomUUID()}`, PRODUCTS[(index + n) % PRODUCTS.length]!);
        n += 1;
      }
    });

    await new Promise((resolve) => setTimeout(resolve, 2000));
    const before = acknowledged.size;
    const downMs = await postgres.restart("immediate");
    const backAt = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    stop.abort();
    await Promise.all(shoppers);
    // A retried key answers its first order: send a few acknowledged keys again and compare.
    for (const [key, id] of [...acknowledged].slice(0, 5)) {
      await placeUntilAcknowledged(key, productOfKey.get(key)!);
      assert.equal(acknowledged.get(key), id);
    }

    const outcomes = await Promise.all([...acknowledged.values()].map((id) => shop.followToFinal(id)));
    const byStatus: Record<string, number> = {};
    for (const outcome of outcomes) byStatus[OrderStatus[outcome.status]] = (byStatus[OrderStatus[outcome.status]] ?? 0) + 1;
    assert.ok(
      outcomes.every((outcome) => outcome.status === OrderStatus.CONFIRMED),
      `every order confirmed: ${JSON.stringify(byStatus)}`,
    );

    const db = new pg.Client({ connectionString: postgres.url("orders") });
    await db.connect();
    try {
      const rows = (await db.query<{ id: string; idempotency_key: string; status: string }>("select id, idempotency_key, status from orders")).rows;
      const rowsByKey = new Map<string, string[]>();
      for (const row of rows) rowsByKey.set(row.idempotency_key, [...(rowsByKey.get(row.idempotency_key) ?? []), row.id]);
      for (const [key, id] of acknowledged) {
        assert.deepEqual(rowsByKey.get(key), [id], `key ${key}: one order, the acknowledged one`);
        assert.equal(answersPerKey.get(key)!.size, 1, `key ${key} always answered the same order`);
      }
      assert.equal(rows.length, acknowledged.size, "no order that was never acknowledged");

      // Every order's events leave the outbox (placed + confirmed): the relay survived the restart too.
      const deadline = Date.now() + 30_000;
      let unpublished = Number.POSITIVE_INFINITY;
      while (Date.now() < deadline) {
        unpublished = Number((await db.query<{ count: string }>("select count(*) from outbox where published_at is null")).rows[0]!.count);
        if (unpublished === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.equal(unpublished, 0, "every event published");
      const published = Number((await db.query<{ count: string }>("select count(*) from outbox")).rows[0]!.count);
      assert.equal(published, 2 * acknowledged.size, "two events per order");

      report("orders database restarted", {
        "orders acknowledged": `${acknowledged.size} (${before} before the restart), ${SHOPPERS} shoppers`,
        "database down for": ms(downMs),
        "first order acknowledged after it was back": ms((ackTimes.find((at) => at >= backAt) ?? Number.NaN) - backAt),
        "placements refused and retried": JSON.stringify(refusals),
        "final states": JSON.stringify(byStatus),
        "orders rows": `${rows.length}, one per key; ${published} events published`,
      });
    } finally {
      await db.end();
    }
  } catch (error) {
    process.stderr.write(`mesh output (last 60 lines):\n${mesh.tail(60)}\n`);
    throw error;
  }
});
