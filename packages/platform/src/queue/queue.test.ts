/**
 * The task-queue behaviour suite (@meshwork/testing) against the in-process
 * queue of the all-in-one mode; queue.int.test.ts runs the same suite against
 * amqplib on a real RabbitMQ, so the two cannot drift.
 */
import { randomUUID } from "node:crypto";
import { createSilentLogger } from "../logger.js";
import { createMemoryBroker } from "../messaging/memory-broker.js";
import { createMemoryTaskQueue } from "./memory.js";
import { createEventLog, outgoing, publishOne, SUITE_DRAIN_TIMEOUT_MS, taskQueueBehaviour, topologyFor, type DeadLetterView, type EventLog, type QueueFixture } from "@meshwork/testing";

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
