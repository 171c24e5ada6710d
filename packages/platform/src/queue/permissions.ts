import { requeueExchangeName } from "./amqp-topology.js";
import { deadLetterQueueName } from "./ports.js";

/**
 * RabbitMQ permissions per service, the one definition compose's secrets
 * step, the Kubernetes secret generator and the security test all use.
 *
 * RabbitMQ checks three regular expressions per user and vhost against the
 * name of the resource an operation touches (www.rabbitmq.com/access-control):
 *   configure  exchange.declare / queue.declare (not passive) and their deletes;
 *   write      basic.publish (the exchange); queue.bind (the queue); declaring
 *              a queue with x-dead-letter-exchange (the dead-letter exchange);
 *   read       basic.consume / basic.get (the queue); queue.bind (the exchange);
 *              declaring a queue with x-dead-letter-exchange (the queue itself).
 * Each regex below is the least that lets the service do what its code does
 * (messaging/amqp-publisher.ts, queue/amqp.ts, queue/amqp-topology.ts);
 * permissions.security.int.test.ts shows on a real broker that emptying any
 * one of them breaks the service's legitimate path.
 */
export interface AmqpPermission {
  readonly configure: string;
  readonly write: string;
  readonly read: string;
}

export interface AmqpPermissionTopology {
  /** Topic exchange orders publishes its events to (ORDERS_EVENTS_EXCHANGE / NOTIFICATIONS_EVENTS_EXCHANGE). */
  readonly ordersExchange: string;
  /** notifications' work queue (NOTIFICATIONS_QUEUE); its retry, requeue and dead-letter objects are named after it. */
  readonly notificationsQueue: string;
}

/** The services that talk to RabbitMQ, and the broker user each one logs in as. */
export const AMQP_USERS = { orders: "meshwork-orders", notifications: "meshwork-notifications" } as const;
export type AmqpService = keyof typeof AMQP_USERS;

/** The RabbitMQ regex "nothing": no resource name is empty. */
export const NOTHING = "^$";

/** `text` as a literal inside a regex (names hold dots). */
const literal = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * Every exchange and queue name the consumer of `queue` declares, for any
 * number of retry levels: the queue, `<queue>.requeue`, `<queue>.dead` and
 * `<queue>.retry.N` (queue/amqp-topology.ts names them; exchanges and queues
 * share names there). N is open-ended so that changing
 * NOTIFICATIONS_RETRY_DELAYS_MS needs no new permissions.
 */
export function queueObjectsPattern(queue: string): string {
  return `^(${queueObjects(queue)})$`;
}

const queueObjects = (queue: string): string => [...[queue, requeueExchangeName(queue), deadLetterQueueName(queue)].map(literal), `${literal(queue)}\\.retry\\.[1-9][0-9]*`].join("|");

export function amqpPermissions(topology: AmqpPermissionTopology): Record<AmqpService, AmqpPermission> {
  if (topology.ordersExchange === "" || topology.notificationsQueue === "") throw new Error("amqpPermissions: the orders exchange and the notifications queue must be named");
  const exchange = `^${literal(topology.ordersExchange)}$`;
  const own = queueObjectsPattern(topology.notificationsQueue);
  return {
    orders: {
      // The publisher declares its own exchange before the first publish.
      configure: exchange,
      // It publishes there, and nowhere else.
      write: exchange,
      // It consumes nothing and binds nothing.
      read: NOTHING,
    },
    notifications: {
      // Its own queue, delay queues and fanout exchanges; never the orders
      // exchange, which it may bind to but neither declare nor delete (the
      // consumer declares a main exchange only when it is missing).
      configure: own,
      // Binds its own queues, publishes retry and dead-letter copies to its
      // own fanout exchanges, names its own dead-letter exchanges on its queues.
      write: own,
      // Consumes its queue and binds it to the orders exchange (reading an
      // exchange is what binding from it takes; it cannot publish there).
      read: `^(${literal(topology.ordersExchange)}|${queueObjects(topology.notificationsQueue)})$`,
    },
  };
}
