/** What the outbox tests share (outbox.test.ts on PGlite, outbox.int.test.ts on PostgreSQL and RabbitMQ). */
import type { OutgoingMessage } from "../messaging/ports.js";
import type { OutboxEvent } from "./outbox.js";

export const event = (aggregateId: string, sequence: number, exchange = "shop.test.v1"): OutboxEvent => ({
  aggregateId,
  exchange,
  routingKey: "thing.changed",
  type: "shop.test.v1.ThingChanged",
  contentType: "application/json",
  body: Buffer.from(JSON.stringify({ aggregateId, sequence })),
  headers: { "schema-version": 1 },
});

/** The (aggregate, sequence) pairs that `event` put into the messages' bodies, in order. */
export const sequences = (messages: readonly OutgoingMessage[] | readonly { body: Uint8Array }[]) =>
  messages.map((message) => JSON.parse(Buffer.from(message.body).toString()) as { aggregateId: string; sequence: number });
