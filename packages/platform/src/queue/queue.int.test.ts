/**
 * The task-queue behaviour suite (@meshwork/testing) against amqplib on a
 * real RabbitMQ (skipped with a notice when none is reachable, a failure
 * under MESHWORK_REQUIRE_INFRA=1); queue.test.ts runs it on the in-process queue.
 */
import type { Channel, ConsumeMessage } from "amqplib";
import { createSilentLogger } from "../logger.js";
import { createAmqpPublisher } from "../messaging/amqp-publisher.js";
import {
  amqpUrl,
  connectRabbit,
  createEventLog,
  deleteTestTopology,
  outgoing,
  publishOne,
  SUITE_DRAIN_TIMEOUT_MS,
  taskQueueBehaviour,
  topologyFor,
  uniqueName,
  type DeadLetterView,
  type EventLog,
  type QueueFixture,
} from "@meshwork/testing";
import { createAmqpTaskQueue } from "./amqp.js";
import { deadLetterQueueName, type QueueTopology } from "./ports.js";

taskQueueBehaviour("RabbitMQ (amqplib)", async (t): Promise<QueueFixture | undefined> => {
  // Skips (or fails, in CI) when no broker answers; this connection reads dead-letter queues.
  const inspector = await connectRabbit(t);
  if (!inspector) return undefined;
  const log = createSilentLogger();
  const exchange = uniqueName("queue");
  const topologies: QueueTopology[] = [];
  const queue = createAmqpTaskQueue({ url: amqpUrl(), log, drainTimeoutMs: SUITE_DRAIN_TIMEOUT_MS });
  const publisher = await createAmqpPublisher({ url: amqpUrl(), log, exchanges: [exchange] });
  t.onTestFinished(async () => {
    await queue.close();
    await publisher.close();
    // Its own connection: the inspector's is closed after this hook (registered before it; clean-up runs last in, first out).
    await deleteTestTopology(topologies, [exchange]);
  });

  let channel: Promise<Channel> | undefined;
  const letters = new Map<string, Promise<EventLog<DeadLetterView>>>();
  /** Consumes `<queue>.dead` (it exists once a consumer of the queue is ready) into an event log. */
  const lettersOf = (name: string): Promise<EventLog<DeadLetterView>> => {
    let found = letters.get(name);
    if (!found) {
      found = (async () => {
        channel ??= inspector.createChannel();
        const open = await channel;
        const events = createEventLog<DeadLetterView>(`dead letters of ${name}`);
        await open.consume(
          deadLetterQueueName(name),
          (message: ConsumeMessage | null) => {
            if (!message) return;
            events.push({
              messageId: String(message.properties.messageId),
              routingKey: message.fields.routingKey,
              headers: (message.properties.headers ?? {}) as Record<string, unknown>,
              body: new Uint8Array(message.content),
            });
          },
          { noAck: true },
        );
        return events;
      })();
      letters.set(name, found);
    }
    return found;
  };

  return {
    queue,
    topology(label, bindings, retryDelaysMs) {
      const topology = topologyFor(exchange, label, bindings, retryDelaysMs);
      topologies.push(topology);
      return topology;
    },
    publish: (routingKey, body, extras) => publishOne(publisher, outgoing(exchange, routingKey, body, extras)),
    deadLetters: async (name, count) => (await lettersOf(name)).until((items) => items.length >= count, `${count} dead letters`),
  };
});
