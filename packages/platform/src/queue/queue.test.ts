/**
 * The task-queue behaviour suite against both adapters: the in-process queue
 * of the all-in-one mode, and amqplib on a real RabbitMQ (skipped with a
 * notice when none is reachable, a failure under MESHWORK_REQUIRE_INFRA=1).
 */
import { randomUUID } from "node:crypto";
import type { Channel, ConsumeMessage } from "amqplib";
import { createSilentLogger } from "../logger.js";
import { createAmqpPublisher } from "../messaging/amqp-publisher.js";
import { createMemoryBroker } from "../messaging/memory-broker.js";
import type { MessagePublisher, OutgoingMessage } from "../messaging/ports.js";
import { amqpUrl, connectRabbit, deleteTestTopology, uniqueName } from "@meshwork/testing";
import { createAmqpTaskQueue } from "./amqp.js";
import { createMemoryTaskQueue } from "./memory.js";
import { deadLetterQueueName, type QueueTopology } from "./ports.js";
import {
  createEventLog,
  MESSAGE_TYPE,
  SUITE_DRAIN_TIMEOUT_MS,
  taskQueueBehaviour,
  type DeadLetterView,
  type EventLog,
  type PublishExtras,
  type QueueFixture,
} from "@meshwork/testing";

function outgoing(exchange: string, routingKey: string, body: string | Uint8Array, extras: PublishExtras = {}): OutgoingMessage {
  return {
    messageId: randomUUID(),
    exchange,
    routingKey,
    type: MESSAGE_TYPE,
    contentType: "application/json",
    body: typeof body === "string" ? new TextEncoder().encode(body) : body,
    headers: extras.headers ?? {},
    timestamp: new Date(),
  };
}

function topologyFor(exchange: string, label: string, bindings: readonly string[], retryDelaysMs: readonly number[] = []): QueueTopology {
  return { exchange, bindings, queue: `${exchange}.${label}`, retryDelaysMs };
}

async function publishOne(publisher: MessagePublisher, message: OutgoingMessage): Promise<string> {
  await publisher.publish([message]);
  return message.messageId;
}

taskQueueBehaviour("in-process queue", async (t): Promise<QueueFixture> => {
  const broker = createMemoryBroker();
  const queue = createMemoryTaskQueue({ broker, log: createSilentLogger(), drainTimeoutMs: SUITE_DRAIN_TIMEOUT_MS });
  t.onTestFinished(() => queue.close());
  const exchange = `test.queue.${randomUUID()}`;
  const letters = new Map<string, EventLog<DeadLetterView>>();
  const lettersOf = (name: string): EventLog<DeadLetterView> => {
    let log = letters.get(name);
    if (!log) {
      log = createEventLog<DeadLetterView>(`dead letters of ${name}`);
      letters.set(name, log);
      for (const letter of queue.deadLetters(name)) log.push(letter);
    }
    return log;
  };
  queue.onDeadLetter((name, letter) => {
    // Only queues a test asked about are watched; the rest are read on first ask.
    letters.get(name)?.push(letter);
  });
  return {
    queue,
    topology: (label, bindings, retryDelaysMs) => topologyFor(exchange, label, bindings, retryDelaysMs),
    publish: (routingKey, body, extras) => publishOne(broker.publisher, outgoing(exchange, routingKey, body, extras)),
    deadLetters: (name, count) => lettersOf(name).until((items) => items.length >= count, `${count} dead letters`),
  };
});

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
    // Its own connection: the inspector's is closed by the hook registered before this one.
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
