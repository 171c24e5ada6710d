import type { Channel } from "amqplib";
import { deadLetterQueueName, retryQueueName, type QueueTopology } from "./ports.js";

/**
 * The RabbitMQ objects behind one work queue. Everything is durable and named
 * after the work queue, so one queue's retries never concern another:
 *
 *   exchange (topic) ──bindings──▶ queue ◀── <queue>.requeue (fanout)
 *                                                   ▲ dead-lettered on expiry
 *   <queue>.retry.N (fanout exchange) ──▶ <queue>.retry.N (queue, x-message-ttl = delay N)
 *   <queue>.dead (fanout exchange)    ──▶ <queue>.dead (queue)
 *
 * A failed message is published, with its ORIGINAL routing key, to the fanout
 * exchange of its retry level (fanout ignores the key, so it survives). When
 * its TTL runs out, RabbitMQ dead-letters it to `<queue>.requeue`, keeping
 * that key, and the fanout delivers it to this work queue only: other queues
 * bound to the main exchange never see the retry. Republishing through the
 * default exchange instead would replace the key with the queue's name.
 *
 * Exchanges and queues live in separate namespaces in AMQP, so a fanout
 * exchange may share its queue's name; it keeps the management UI readable.
 */
export interface AmqpTopology {
  readonly exchange: string;
  readonly bindings: readonly string[];
  readonly queue: string;
  /** Where delay queues send expired messages; bound to the work queue alone. */
  readonly requeueExchange: string;
  readonly retries: readonly { readonly exchange: string; readonly queue: string; readonly delayMs: number }[];
  readonly deadLetterExchange: string;
  readonly deadLetterQueue: string;
}

export const requeueExchangeName = (queue: string): string => `${queue}.requeue`;

export function amqpTopologyOf(topology: QueueTopology): AmqpTopology {
  const deadLetterQueue = deadLetterQueueName(topology.queue);
  return {
    exchange: topology.exchange,
    bindings: topology.bindings,
    queue: topology.queue,
    requeueExchange: requeueExchangeName(topology.queue),
    retries: topology.retryDelaysMs.map((delayMs, index) => ({ exchange: retryQueueName(topology.queue, index), queue: retryQueueName(topology.queue, index), delayMs })),
    deadLetterExchange: deadLetterQueue,
    deadLetterQueue,
  };
}

/**
 * Declares everything (idempotent: run after every reconnect). A queue that
 * already exists with other arguments (say, a changed retry delay) makes the
 * broker close the channel with PRECONDITION_FAILED (406): delete the old
 * delay queue, it holds only messages waiting for a retry.
 */
export async function declareAmqpTopology(channel: Channel, topology: AmqpTopology, options: { readonly declareExchange?: boolean } = {}): Promise<void> {
  // The main exchange is its publisher's: a least-privilege consumer may bind
  // to it but not declare it (queue/permissions.ts), so the caller skips it
  // when it exists already.
  if (options.declareExchange ?? true) await channel.assertExchange(topology.exchange, "topic", { durable: true });

  await channel.assertExchange(topology.deadLetterExchange, "fanout", { durable: true });
  await channel.assertQueue(topology.deadLetterQueue, { durable: true });
  await channel.bindQueue(topology.deadLetterQueue, topology.deadLetterExchange, "");

  await channel.assertExchange(topology.requeueExchange, "fanout", { durable: true });
  // The work queue's own dead-letter exchange: anything the broker itself
  // drops (an operator's max-length or TTL policy, a reject) lands in the
  // dead-letter queue rather than vanishing. The adapter never relies on it.
  await channel.assertQueue(topology.queue, { durable: true, arguments: { "x-dead-letter-exchange": topology.deadLetterExchange } });
  for (const pattern of topology.bindings) await channel.bindQueue(topology.queue, topology.exchange, pattern);
  await channel.bindQueue(topology.queue, topology.requeueExchange, "");

  for (const retry of topology.retries) {
    await channel.assertExchange(retry.exchange, "fanout", { durable: true });
    await channel.assertQueue(retry.queue, {
      durable: true,
      arguments: { "x-message-ttl": retry.delayMs, "x-dead-letter-exchange": topology.requeueExchange },
    });
    await channel.bindQueue(retry.queue, retry.exchange, "");
  }
}

/** Removes every object of the topology but the main exchange (shared with other queues). For tests and tear-down. */
export async function deleteAmqpTopology(channel: Channel, topology: AmqpTopology): Promise<void> {
  await channel.deleteQueue(topology.queue);
  await channel.deleteQueue(topology.deadLetterQueue);
  await channel.deleteExchange(topology.deadLetterExchange);
  await channel.deleteExchange(topology.requeueExchange);
  for (const retry of topology.retries) {
    await channel.deleteQueue(retry.queue);
    await channel.deleteExchange(retry.exchange);
  }
}
