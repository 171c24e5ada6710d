/**
 * Messages out to a broker, as a port. Adapters: amqplib on RabbitMQ
 * (amqp-publisher.ts) and an in-process broker for the all-in-one mode
 * (memory-broker.ts).
 */

export interface OutgoingMessage {
  /** Stable, unique id; consumers deduplicate on it. */
  readonly messageId: string;
  /** Topic exchange, e.g. "shop.orders.v1". */
  readonly exchange: string;
  /** Routing key, e.g. "order.confirmed". */
  readonly routingKey: string;
  /** Full name of the payload's message type, e.g. "shop.orders.v1.OrderStatusChanged". */
  readonly type: string;
  /** "application/json" or "application/x-protobuf". */
  readonly contentType: string;
  readonly body: Uint8Array;
  /** Extra headers: schema version, trace context, request id. */
  readonly headers: Readonly<Record<string, string | number>>;
  readonly timestamp: Date;
}

export interface MessagePublisher {
  /**
   * Publishes the messages in order and resolves once the broker has
   * confirmed every one of them (persisted, for durable queues). Rejects when
   * any is refused or the connection fails: the caller must then assume none
   * was delivered and publish them all again later (consumers deduplicate).
   */
  publish(messages: readonly OutgoingMessage[]): Promise<void>;
  close(): Promise<void>;
}

/** An AMQP-style topic pattern match: "*" is one word, "#" zero or more. */
export function topicMatches(pattern: string, routingKey: string): boolean {
  const words = routingKey.split(".");
  const parts = pattern.split(".");
  const match = (p: number, w: number): boolean => {
    if (p === parts.length) return w === words.length;
    const part = parts[p];
    if (part === "#") {
      for (let skip = w; skip <= words.length; skip++) if (match(p + 1, skip)) return true;
      return false;
    }
    if (w === words.length) return false;
    return (part === "*" || part === words[w]) && match(p + 1, w + 1);
  };
  return match(0, 0);
}
