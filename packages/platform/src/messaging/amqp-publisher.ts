import amqp, { type ConfirmChannel, type RecoveringChannelModel } from "amqplib";
import type { Logger } from "../logger.js";
import { CREATED_AT_MS_HEADER } from "../queue/ports.js";
import type { MessagePublisher, OutgoingMessage } from "./ports.js";

export interface AmqpPublisherOptions {
  /** amqp://user:pass@host:5672/vhost */
  readonly url: string;
  readonly log: Logger;
  /** Topic exchanges to declare (durable) before the first publish. */
  readonly exchanges: readonly string[];
  /** A publish batch not confirmed within this time fails (default 10 s). */
  readonly confirmTimeoutMs?: number;
}

/**
 * Publishes with publisher confirms on RabbitMQ. A batch is written to the
 * channel in one go and then confirmed as a whole (windowed, not one message
 * at a time). The connection recovers by itself (amqplib's opt-in recovery);
 * a batch caught by a disconnect fails and is published again by the caller.
 */
export async function createAmqpPublisher(options: AmqpPublisherOptions): Promise<MessagePublisher> {
  const { log } = options;
  const timeoutMs = options.confirmTimeoutMs ?? 10_000;
  const connection: RecoveringChannelModel = await amqp.connect(options.url, {
    // amqplib leaves Nagle on: a batch and its confirm then wait out the
    // broker's delayed ACK (40 ms a round) — the whole relay's latency.
    noDelay: true,
    recovery: { initialDelay: 100, maxDelay: 5_000, maxRetries: Infinity, waitForConnect: false },
  });
  connection.on("disconnect", (error: Error) => log.warn({ err: error.message }, "broker connection lost; recovering"));
  connection.on("connect", () => log.info("broker connected"));
  connection.on("error", (error: Error) => log.warn({ err: error.message }, "broker connection error"));

  let channel: Promise<ConfirmChannel> | undefined;
  const openChannel = (): Promise<ConfirmChannel> => {
    channel ??= (async () => {
      const created = await connection.createConfirmChannel();
      created.on("error", (error: Error) => log.warn({ err: error.message }, "publish channel error"));
      created.on("close", () => {
        channel = undefined;
      });
      for (const exchange of options.exchanges) await created.assertExchange(exchange, "topic", { durable: true });
      return created;
    })().catch((error: unknown) => {
      channel = undefined;
      throw error;
    });
    return channel;
  };

  const withTimeout = <T>(work: Promise<T>, what: string): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${timeoutMs} ms`)), timeoutMs);
    });
    return Promise.race([work, expired]).finally(() => clearTimeout(timer));
  };

  return {
    async publish(messages: readonly OutgoingMessage[]) {
      if (messages.length === 0) return;
      const open = await withTimeout(openChannel(), "opening a publish channel");
      for (const message of messages) {
        const written = open.publish(message.exchange, message.routingKey, Buffer.from(message.body), {
          persistent: true,
          messageId: message.messageId,
          type: message.type,
          contentType: message.contentType,
          timestamp: Math.floor(message.timestamp.getTime() / 1000),
          // Milliseconds beside AMQP's whole-second timestamp: consumers measure their lag with it.
          headers: { ...message.headers, [CREATED_AT_MS_HEADER]: message.timestamp.getTime() },
          mandatory: false,
        });
        // Respect the channel's buffer: a slow broker must not make us hold a batch in memory twice.
        if (!written) await withTimeout(new Promise<void>((resolve) => open.once("drain", () => resolve())), "waiting for the channel to drain");
      }
      await withTimeout(open.waitForConfirms(), "waiting for publisher confirms");
    },
    async close() {
      await connection.close().catch(() => undefined);
    },
  };
}
