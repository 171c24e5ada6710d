import type { Delivery, Logger, WatchHub } from "@meshwork/platform";
import { notificationsFor, type OrderEvent } from "./notifications.js";
import { parseOrderEvent } from "./order-events.js";
import type { NotificationStore } from "./ports.js";
import type { StatsBoard } from "./stats.js";

export interface OrderEventHandlerDeps {
  readonly store: NotificationStore;
  readonly hub: WatchHub;
  readonly stats: StatsBoard;
  readonly log: Logger;
}

export interface OrderEventHandler {
  /** For the task queue's `parse`: throws (so the message is dead-lettered) when the event cannot be handled. */
  parse(body: Uint8Array, contentType: string): OrderEvent;
  /** For the task queue's `handle`: resolves once the event is recorded (or known to be a duplicate); throws to have it retried. */
  handle(delivery: Delivery<OrderEvent>): Promise<void>;
}

const header = (headers: Delivery<unknown>["headers"], name: string): string | undefined => {
  const value = headers[name];
  return value === undefined ? undefined : String(value);
};

/**
 * Turns order events into recorded notifications, once per event however
 * often it is delivered: the inbox entry and the notifications commit
 * together, and only then are this instance's streams woken.
 */
export function createOrderEventHandler({ store, hub, stats, log }: OrderEventHandlerDeps): OrderEventHandler {
  return {
    parse(body, contentType) {
      try {
        return parseOrderEvent(body, contentType);
      } catch (error) {
        // Counted only: the task queue logs it with its message id as it dead-letters it.
        stats.add("refused");
        throw error;
      }
    },

    async handle(delivery) {
      const event = delivery.body;
      // Orders sets message_id = event_id. A publisher that left the property
      // out still has the event id in the body, which is the same key.
      const messageId = delivery.messageId || event.eventId;
      const requestId = header(delivery.headers, "x-request-id");
      const traceparent = header(delivery.headers, "traceparent");
      const eventLog = log.child({ messageId, orderId: event.orderId, ...(requestId ? { requestId } : {}), ...(traceparent ? { traceparent } : {}) });
      const drafts = notificationsFor(event);
      if (event.status === undefined) eventLog.warn({ routingKey: delivery.routingKey }, "order event with a status this service does not know; no notification");
      const outcome = await store.record(messageId, drafts);
      if (outcome.duplicate) {
        stats.add("duplicates");
        eventLog.info({ attempt: delivery.attempt }, "duplicate order event ignored");
        return;
      }
      stats.add("handled");
      stats.add("recorded", outcome.notifications.length);
      for (const userId of new Set(outcome.notifications.map((notification) => notification.userId))) hub.notify(userId);
      eventLog.info({ routingKey: delivery.routingKey, notifications: outcome.notifications.length, attempt: delivery.attempt }, "order event handled");
    },
  };
}
