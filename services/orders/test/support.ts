import { randomBytes, randomUUID } from "node:crypto";
import { createSilentLogger, openDatabase, type Knex } from "@meshwork/platform";
import { openMigratedTestDatabase, type TestEngine, type TestScope } from "@meshwork/testing";
import { migrations } from "../migrations/index.js";
import { createCardTokenCipher } from "../src/adapters/card-token-cipher.js";
import { createKnexOrderStore, type KnexOrderStore } from "../src/adapters/order-store.knex.js";
import { createOrderEventFactory, ORDER_EVENT_TYPE } from "../src/messages.js";
import { checkPlacement, placementFingerprint, type PlacementRequest } from "../src/orders.js";
import type { NewOrder } from "../src/ports.js";

export type Engine = TestEngine;

/** An orders database on the engine (undefined when PostgreSQL is skipped), migrated. */
export async function ordersDatabase(t: TestScope, engine: Engine, options: { readonly privateEmbedded?: boolean } = {}): Promise<Knex | undefined> {
  if (engine === "PGlite" && options.privateEmbedded) {
    // A PGlite of its own instead of a schema of the process's shared one (see sales-view.test.ts).
    const database = await openDatabase({ dataDir: "memory://", migrations, migrationsTable: "orders_migrations", log: createSilentLogger() });
    t.onTestFinished(() => database.close());
    await database.migrate();
    return database.knex;
  }
  return (await openMigratedTestDatabase(t, engine, { label: "orders", migrations, migrationsTable: "orders_migrations", poolMax: 20 }))?.knex;
}

/** One key for the whole test process: stores opened on the same database (a restart) open each other's tokens. */
export const TEST_CARD_TOKEN_KEY = randomBytes(32);

export function orderStore(db: Knex, key: Buffer = TEST_CARD_TOKEN_KEY): KnexOrderStore {
  return createKnexOrderStore({
    db,
    cardTokens: createCardTokenCipher(key),
    outbox: (aggregateId, event) => ({
      aggregateId,
      exchange: "shop.orders.v1",
      routingKey: event.routingKey,
      type: ORDER_EVENT_TYPE,
      contentType: "application/json",
      body: event.body,
      headers: event.headers,
      messageId: event.messageId,
    }),
  });
}

export const eventFactory = createOrderEventFactory();

export function newOrder(userId: string, request: Partial<PlacementRequest> = {}): NewOrder {
  const placement = checkPlacement({ idempotencyKey: `key-${randomUUID()}`, items: [{ productId: "MW-TEA-TIN", quantity: 1 }], cardToken: "tok_visa", ...request });
  return { id: randomUUID(), userId, requestId: randomUUID(), request: placement, fingerprint: placementFingerprint(placement) };
}

export async function outboxRoutingKeys(db: Knex, orderId: string): Promise<string[]> {
  return db("outbox").where({ aggregate_id: orderId }).orderBy("id").pluck("routing_key");
}
