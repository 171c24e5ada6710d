/**
 * Task queues, as a port: durable work queues fed by a topic exchange, with
 * manual acknowledgement, retries through delay queues with growing back-off,
 * and a dead-letter queue. Adapters: amqplib on RabbitMQ (amqp.ts) and an
 * in-process queue for the all-in-one mode (memory.ts). One behaviour suite
 * (queue.behaviour.ts) runs against both, so they cannot drift.
 */

/** A message as a handler sees it. */
export interface Delivery<T> {
  /** The publisher's stable message id (deduplicate on it). */
  readonly messageId: string;
  readonly routingKey: string;
  /** Message type from the publisher, e.g. "shop.orders.v1.OrderStatusChanged". */
  readonly type: string;
  readonly headers: Readonly<Record<string, string | number>>;
  /** The parsed body. */
  readonly body: T;
  /** 1 for the first delivery, 2 for the first retry, ... */
  readonly attempt: number;
  /** When the publisher created the message, if it said (its age at consume time is the consumer lag). */
  readonly createdAt?: Date;
}

/** Header with the message's creation time in epoch ms (AMQP's own timestamp property has whole seconds only). */
export const CREATED_AT_MS_HEADER = "x-created-at-ms";

export interface QueueTopology {
  /** Topic exchange the work comes from, e.g. "shop.orders.v1" (declared durable if missing). */
  readonly exchange: string;
  /** Routing-key patterns bound to the work queue, e.g. ["order.#"]. */
  readonly bindings: readonly string[];
  /** Durable work queue, shared by competing consumers, e.g. "notifications.order-events". */
  readonly queue: string;
  /** Delay before each retry, in order; after the last one a failing message is dead-lettered. E.g. [1000, 5000, 30000]. */
  readonly retryDelaysMs: readonly number[];
}

export interface ConsumerOptions<T> extends QueueTopology {
  /** Messages handled at once by this consumer (AMQP prefetch). */
  readonly prefetch: number;
  /**
   * Turns the raw body into T; throwing here means the message can never be
   * handled: it goes straight to the dead-letter queue with the reason.
   */
  parse(body: Uint8Array, contentType: string): T;
  /**
   * Handles one message. Resolving acknowledges it; throwing schedules a retry
   * (or dead-letters it after the last retry delay). Never both.
   */
  handle(delivery: Delivery<T>): Promise<void>;
}

export interface Consumer {
  /** Resolves once the consumer is subscribed. */
  ready(): Promise<void>;
  /** Stops taking new messages, lets in-flight handlers finish (or returns their messages to the queue), and closes. */
  stop(): Promise<void>;
}

export interface TaskQueue {
  consume<T>(options: ConsumerOptions<T>): Consumer;
  /** Messages ready in a work queue (not yet handed to a consumer): the queue depth. Undefined when it cannot be read now (broker down, unknown queue). */
  depth(queue: string): Promise<number | undefined>;
  close(): Promise<void>;
}

/** Headers the adapters set on dead-lettered messages, so a person can see why. */
export const DEAD_LETTER_REASON_HEADER = "x-dead-letter-reason";
export const ATTEMPT_HEADER = "x-attempt";

/** Names derived from the work queue's name. */
export const retryQueueName = (queue: string, index: number): string => `${queue}.retry.${index + 1}`;
export const deadLetterQueueName = (queue: string): string => `${queue}.dead`;
