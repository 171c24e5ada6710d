/**
 * Helpers for tests against a real RabbitMQ at MESHWORK_TEST_AMQP_URL
 * (default amqp://guest:guest@127.0.0.1:5672). Each test names its own
 * exchanges and queues, so tests never see each other's messages.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import type { TestScope } from "./scope.js";
import amqp, { type ChannelModel, type ConsumeMessage } from "amqplib";
import { amqpTopologyOf, deleteAmqpTopology } from "@meshwork/platform";
import type { QueueTopology } from "@meshwork/platform";
import { needs } from "./infra.js";

export const amqpUrl = (): string => process.env.MESHWORK_TEST_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";

export const uniqueName = (label: string): string => `test.${label}.${randomBytes(4).toString("hex")}`;

/** An AMQP connection for the test, or undefined when the test was skipped. */
export async function connectRabbit(t: TestScope): Promise<ChannelModel | undefined> {
  let connection: ChannelModel | undefined;
  let missing: string | undefined;
  try {
    connection = await amqp.connect(amqpUrl());
  } catch (error) {
    missing = `RabbitMQ at ${amqpUrl().replace(/\/\/[^@]*@/, "//")}: ${error instanceof Error ? error.message : String(error)}`;
  }
  if (!needs(t, "RabbitMQ", missing)) return undefined;
  connection!.on("error", () => undefined);
  t.onTestFinished(() => connection!.close().catch(() => undefined));
  return connection;
}

export interface CollectedMessage {
  readonly messageId: string;
  readonly routingKey: string;
  readonly type: string;
  readonly headers: Record<string, unknown>;
  readonly body: Buffer;
}

export interface Collector {
  readonly messages: CollectedMessage[];
  /** Resolves once at least `count` messages arrived (rejects after timeoutMs). */
  waitFor(count: number, timeoutMs?: number): Promise<CollectedMessage[]>;
  /** Resolves once `done(messages)` holds, checked at every arrival (rejects after timeoutMs). */
  waitUntil(done: (messages: readonly CollectedMessage[]) => boolean, what: string, timeoutMs?: number): Promise<CollectedMessage[]>;
}

/** Declares the topic exchange, binds an exclusive queue to it with `pattern`, and collects what arrives. */
export async function collectFromExchange(connection: ChannelModel, exchange: string, pattern = "#"): Promise<Collector> {
  const channel = await connection.createChannel();
  await channel.assertExchange(exchange, "topic", { durable: true });
  const { queue } = await channel.assertQueue("", { exclusive: true, durable: false });
  await channel.bindQueue(queue, exchange, pattern);
  const messages: CollectedMessage[] = [];
  const waiters = new Set<() => void>();
  await channel.consume(
    queue,
    (message: ConsumeMessage | null) => {
      if (!message) return;
      messages.push({
        messageId: String(message.properties.messageId),
        routingKey: message.fields.routingKey,
        type: String(message.properties.type),
        headers: (message.properties.headers ?? {}) as Record<string, unknown>,
        body: message.content,
      });
      for (const waiter of waiters) waiter();
    },
    { noAck: true },
  );
  const waitUntil = (done: (seen: readonly CollectedMessage[]) => boolean, what: string, timeoutMs = 20_000): Promise<CollectedMessage[]> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (!done(messages)) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(messages);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`${what} on ${exchange} did not happen within ${timeoutMs} ms (${messages.length} messages arrived)`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  return {
    messages,
    waitUntil,
    waitFor: (count, timeoutMs) => waitUntil((seen) => seen.length >= count, `${count} messages`, timeoutMs),
  };
}

/**
 * A test's clean-up: deletes each topology's queues and retry exchanges, then
 * `exchanges`, on a connection of its own (the test's may have died with a
 * broker restart).
 */
export async function deleteTestTopology(topologies: readonly QueueTopology[], exchanges: readonly string[] = []): Promise<void> {
  const connection = await amqp.connect(amqpUrl());
  try {
    const channel = await connection.createChannel();
    for (const topology of topologies) await deleteAmqpTopology(channel, amqpTopologyOf(topology));
    for (const exchange of exchanges) await channel.deleteExchange(exchange);
  } finally {
    await connection.close().catch(() => undefined);
  }
}

const execFileAsync = promisify(execFile);

/** Runs `rabbitmqctl` against the local node, bounded to a minute. */
export async function rabbitmqctl(...args: string[]): Promise<void> {
  await execFileAsync("rabbitmqctl", args, { timeout: 60_000 });
}

/**
 * Why the broker cannot be restarted by a test (no rabbitmqctl, or the node
 * does not answer it), or undefined when it can. For `needs`.
 */
export async function rabbitmqctlMissing(): Promise<string | undefined> {
  try {
    await execFileAsync("rabbitmqctl", ["status"], { timeout: 20_000 });
    return undefined;
  } catch (error) {
    return `rabbitmqctl status failed: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`;
  }
}
