import { topicMatches, type MessagePublisher, type OutgoingMessage } from "./ports.js";

export type MemorySubscriber = (message: OutgoingMessage) => void;

export interface MemoryBroker {
  readonly publisher: MessagePublisher;
  /** Delivers every later message whose exchange and routing key match. Returns an unsubscribe function. */
  subscribe(exchange: string, pattern: string, subscriber: MemorySubscriber): () => void;
}

/**
 * Topic exchanges in process, for the all-in-one mode and tests. A publish is
 * "confirmed" once every matching subscriber has been handed the message,
 * which is the in-process equivalent of RabbitMQ routing it to its queues.
 */
export function createMemoryBroker(): MemoryBroker {
  const subscriptions = new Set<{ exchange: string; pattern: string; subscriber: MemorySubscriber }>();
  return {
    publisher: {
      async publish(messages) {
        for (const message of messages) {
          for (const subscription of subscriptions) {
            if (subscription.exchange === message.exchange && topicMatches(subscription.pattern, message.routingKey)) {
              subscription.subscriber(message);
            }
          }
        }
      },
      async close() {},
    },
    subscribe(exchange, pattern, subscriber) {
      const subscription = { exchange, pattern, subscriber };
      subscriptions.add(subscription);
      return () => subscriptions.delete(subscription);
    },
  };
}
