import amqp, { type ChannelModel, type ConfirmChannel, type ConsumeMessage, type MessagePropertyHeaders, type Options } from "amqplib";
import type { Logger } from "../logger.js";
import { amqpTopologyOf, declareAmqpTopology, type AmqpTopology } from "./amqp-topology.js";
import { attemptOf, checkTopology, describeError, exhaustedReason, LAST_ERROR_HEADER, nextStep, unparseableReason } from "./failure.js";
import { ATTEMPT_HEADER, CREATED_AT_MS_HEADER, DEAD_LETTER_REASON_HEADER, type Consumer, type ConsumerOptions, type Delivery, type TaskQueue } from "./ports.js";

export interface AmqpTaskQueueOptions {
  /** amqp://user:pass@host:5672/vhost */
  readonly url: string;
  readonly log: Logger;
  /** How long stop() lets in-flight handlers finish before their messages go back to the queue (default 10 s). */
  readonly drainTimeoutMs?: number;
  /** A retry or dead-letter copy not confirmed by the broker within this time counts as not published (default 10 s). */
  readonly confirmTimeoutMs?: number;
}

/** Channel errors that no retry can fix: the topology conflicts with what exists (406) or we may not touch it (403). */
const PERMANENT_CODES = new Set([403, 406]);
/** Pause before a consumer whose channel died (the connection being fine) subscribes again. */
const REATTACH_DELAY_MS = 1_000;
/** Headers RabbitMQ writes when it dead-letters; a republished copy must not carry them (amqplib decodes their timestamps to plain numbers). */
const BROKER_DEATH_HEADERS = ["x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason", "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason"];

interface AttachedConsumer {
  /** Opens a channel on `model`, declares the topology and subscribes; a no-op when already done on this model. */
  attach(model: ChannelModel, duringSetup: boolean): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Task queues on RabbitMQ: durable queues, persistent messages, manual acks
 * and prefetch, retries through per-level delay queues, a dead-letter queue.
 *
 * One connection per TaskQueue with amqplib's opt-in recovery; its `setup`
 * hook re-declares the topology and re-subscribes every consumer after each
 * reconnect, before the connection counts as up. Each consumer has its own
 * confirm channel, used both to consume and to publish retry and dead-letter
 * copies: a failed message is acked only after the broker confirmed its copy,
 * so a crash in between may duplicate a message but never loses one
 * (consumers deduplicate by message id).
 */
export function createAmqpTaskQueue(options: AmqpTaskQueueOptions): TaskQueue {
  const { log } = options;
  const drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
  const confirmTimeoutMs = options.confirmTimeoutMs ?? 10_000;
  const consumers = new Set<AttachedConsumer>();
  /** The connection as it is now; undefined while recovering. */
  let live: ChannelModel | undefined;
  let closed = false;

  const connecting = amqp.connect(options.url, {
    // amqplib leaves Nagle on: each ack/confirm round trip would wait out the
    // broker's delayed ACK (40 ms).
    noDelay: true,
    recovery: {
      initialDelay: 100,
      maxDelay: 5_000,
      maxRetries: Infinity,
      // Resolve at once: consumers wait for the connection through ready().
      waitForConnect: false,
      // Runs on every (re)connect before the connection is handed out; a throw
      // closes it and schedules the next attempt.
      setup: async (model: ChannelModel) => {
        for (const consumer of [...consumers]) await consumer.attach(model, true);
      },
    },
  });
  const connected = connecting.then((connection) => {
    connection.on("connect", (model: ChannelModel) => {
      live = model;
      log.info("task queue connected to the broker");
      // Consumers created while setup ran are not in its loop; attach is a no-op for the others.
      for (const consumer of consumers) consumer.attach(model, false).catch(() => undefined);
    });
    connection.on("disconnect", (error: Error) => {
      live = undefined;
      log.warn({ err: error.message }, "task queue lost the broker; reconnecting");
    });
    connection.on("connect-failed", (error: Error) => log.warn({ err: error.message }, "task queue could not connect to the broker; retrying"));
    connection.on("error", (error: Error) => log.warn({ err: error.message }, "task queue connection error"));
    connection.on("handler-error", (error: Error, event: string) => log.error({ err: error.message, event }, "task queue connection listener threw"));
    return connection;
  });

  return {
    consume<T>(consumerOptions: ConsumerOptions<T>): Consumer {
      checkTopology(consumerOptions, consumerOptions.prefetch);
      if (closed) throw new Error("the task queue is closed");
      const { consumer, attached } = createConsumer(consumerOptions, {
        log: log.child({ queue: consumerOptions.queue }),
        drainTimeoutMs,
        confirmTimeoutMs,
        live: () => live,
        forget: (self) => consumers.delete(self),
      });
      consumers.add(attached);
      if (live) attached.attach(live, false).catch(() => undefined);
      return consumer;
    },
    async depth(queue) {
      const model = live;
      if (!model || closed) return undefined;
      // A channel of its own: checkQueue on a missing queue closes the channel it ran on.
      const channel = await model.createChannel().catch(() => undefined);
      if (!channel) return undefined;
      channel.on("error", () => undefined);
      try {
        return (await channel.checkQueue(queue)).messageCount;
      } catch {
        return undefined;
      } finally {
        await channel.close().catch(() => undefined);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([...consumers].map((consumer) => consumer.stop()));
      const connection = await connected;
      await connection.close().catch(() => undefined);
    },
  };
}

/**
 * Whether `exchange` exists, asked passively on a channel of its own (a
 * missing exchange closes the channel it is asked on). Declaring an exchange
 * that exists still needs the configure permission, which a consumer with
 * least privilege lacks on its publisher's exchange.
 */
async function exchangeExists(model: ChannelModel, exchange: string): Promise<boolean> {
  const channel = await model.createChannel();
  channel.on("error", () => undefined);
  try {
    await channel.checkExchange(exchange);
    await channel.close().catch(() => undefined);
    return true;
  } catch (error) {
    if ((error as { code?: unknown }).code === 404) return false;
    throw error;
  }
}

interface ConsumerDeps {
  readonly log: Logger;
  readonly drainTimeoutMs: number;
  readonly confirmTimeoutMs: number;
  readonly live: () => ChannelModel | undefined;
  readonly forget: (consumer: AttachedConsumer) => void;
}

function createConsumer<T>(options: ConsumerOptions<T>, deps: ConsumerDeps): { consumer: Consumer; attached: AttachedConsumer } {
  const { log } = deps;
  const topology: AmqpTopology = amqpTopologyOf(options);
  let channel: ConfirmChannel | undefined;
  let consumerTag: string | undefined;
  /** The connection this consumer is subscribed (or subscribing) on. */
  let attachedTo: ChannelModel | undefined;
  let attaching: Promise<void> | undefined;
  let reattachTimer: NodeJS.Timeout | undefined;
  let stopping: Promise<void> | undefined;
  /** Set once stop() gave up waiting: late handler results are dropped, their messages are back in the queue. */
  let abandoned = false;
  const inFlight = new Set<Promise<void>>();

  let isReady = false;
  let markReady!: () => void;
  let failReady!: (error: Error) => void;
  const readiness = new Promise<void>((resolve, reject) => {
    markReady = () => {
      isReady = true;
      resolve();
    };
    failReady = reject;
  });
  // Nobody may be waiting on ready(); a failure is also logged.
  readiness.catch(() => undefined);

  const scheduleReattach = (): void => {
    if (stopping || reattachTimer) return;
    reattachTimer = setTimeout(() => {
      reattachTimer = undefined;
      const model = deps.live();
      // While the connection is down, the recovery's setup subscribes again.
      if (model && !channel) attached.attach(model, false).catch(() => undefined);
    }, REATTACH_DELAY_MS);
  };

  /** The channel is gone (broker closed it, or the connection died): unacked messages are back in the queue. */
  const onChannelClosed = (closedChannel: ConfirmChannel): void => {
    if (channel !== closedChannel) return;
    channel = undefined;
    consumerTag = undefined;
    attachedTo = undefined;
    scheduleReattach();
  };

  const open = async (model: ChannelModel, duringSetup: boolean): Promise<void> => {
    let opened: ConfirmChannel | undefined;
    try {
      opened = await model.createConfirmChannel();
      const current = opened;
      current.on("error", (error: Error) => log.warn({ err: error.message }, "consumer channel closed by the broker"));
      current.on("handler-error", (error: Error, event: string) => log.error({ err: error.message, event }, "consumer channel listener threw"));
      current.on("close", () => onChannelClosed(current));
      await declareAmqpTopology(current, topology, { declareExchange: !(await exchangeExists(model, topology.exchange)) });
      await current.prefetch(options.prefetch);
      const reply = await current.consume(options.queue, (message) => onMessage(current, message), { noAck: false });
      if (stopping || attachedTo !== model) {
        // stop() ran, or a newer connection took over, while we subscribed.
        await current.close().catch(() => undefined);
        return;
      }
      channel = current;
      consumerTag = reply.consumerTag;
      log.info({ prefetch: options.prefetch }, "consumer subscribed");
      if (!isReady) markReady();
    } catch (error) {
      if (attachedTo === model) attachedTo = undefined;
      void opened?.close().catch(() => undefined);
      const code = (error as { code?: unknown }).code;
      if (typeof code === "number" && PERMANENT_CODES.has(code)) {
        log.error({ err: describeError(error) }, "the broker refused this queue's topology");
        if (!isReady) {
          // A misconfiguration: give up and say so, rather than retry forever.
          failReady(new Error(`${options.queue}: ${describeError(error)}`));
          stopping = Promise.resolve();
          deps.forget(attached);
          return;
        }
        scheduleReattach();
        return;
      }
      // Anything else during setup is most likely the connection failing: let
      // recovery close it and try again (swallowing it would leave recovery
      // holding a dead connection it never notices).
      if (duringSetup) throw error;
      if (!stopping) log.warn({ err: describeError(error) }, "consumer could not subscribe; trying again");
      scheduleReattach();
    }
  };

  const onMessage = (from: ConfirmChannel, message: ConsumeMessage | null): void => {
    if (message === null) {
      // The broker cancelled the subscription (the queue was deleted):
      // subscribe again, which re-declares it. In-flight handlers still ack
      // on the old channel, closed once they are done.
      log.warn("the broker cancelled the consumer; subscribing again");
      if (channel === from) {
        channel = undefined;
        consumerTag = undefined;
        attachedTo = undefined;
        void Promise.allSettled([...inFlight]).then(() => from.close().catch(() => undefined));
        scheduleReattach();
      }
      return;
    }
    if (stopping) {
      // Arrived while stop() was cancelling: hand it straight back.
      nack(from, message);
      return;
    }
    const work = processMessage(from, message)
      .catch((error: unknown) => log.error({ err: describeError(error) }, "message processing failed unexpectedly"))
      .finally(() => inFlight.delete(work));
    inFlight.add(work);
  };

  const processMessage = async (from: ConfirmChannel, message: ConsumeMessage): Promise<void> => {
    const { properties, fields } = message;
    const rawHeaders: MessagePropertyHeaders = properties.headers ?? {};
    const attempt = attemptOf(rawHeaders[ATTEMPT_HEADER]);
    const messageId = typeof properties.messageId === "string" ? properties.messageId : "";
    const context = { messageId, routingKey: fields.routingKey, attempt };

    let body: T;
    try {
      body = options.parse(new Uint8Array(message.content.buffer, message.content.byteOffset, message.content.byteLength), String(properties.contentType ?? ""));
    } catch (error) {
      const reason = unparseableReason(error);
      log.warn({ ...context, reason }, "unparseable message: dead-lettering it");
      await handOn(from, message, topology.deadLetterExchange, { [DEAD_LETTER_REASON_HEADER]: reason, [ATTEMPT_HEADER]: attempt });
      return;
    }

    const delivery: Delivery<T> = {
      messageId,
      routingKey: fields.routingKey,
      type: typeof properties.type === "string" ? properties.type : "",
      headers: primitiveHeaders(rawHeaders),
      body,
      attempt,
      ...createdAtOf(rawHeaders, properties.timestamp),
    };
    let failure: { error: unknown } | undefined;
    try {
      await options.handle(delivery);
    } catch (error) {
      failure = { error };
    }
    if (abandoned) return;
    if (!failure) {
      ack(from, message);
      return;
    }
    const step = nextStep(attempt, options.retryDelaysMs);
    const lastError = describeError(failure.error);
    if (step.kind === "retry") {
      const retry = topology.retries[step.index];
      if (!retry) throw new Error(`no retry level ${step.index}`);
      log.warn({ ...context, err: lastError, retryInMs: step.delayMs }, "handler failed; retrying later");
      await handOn(from, message, retry.exchange, { [ATTEMPT_HEADER]: step.nextAttempt, [LAST_ERROR_HEADER]: lastError });
    } else {
      const reason = exhaustedReason(attempt, failure.error);
      log.error({ ...context, reason }, "handler failed on every attempt: dead-lettering the message");
      await handOn(from, message, topology.deadLetterExchange, { [DEAD_LETTER_REASON_HEADER]: reason, [ATTEMPT_HEADER]: attempt, [LAST_ERROR_HEADER]: lastError });
    }
  };

  /**
   * Publishes a copy (same body, properties and ORIGINAL routing key) and acks
   * the original only once the broker confirmed the copy. If the copy cannot
   * be published, the original goes back to the queue instead.
   */
  const handOn = async (from: ConfirmChannel, message: ConsumeMessage, exchange: string, extraHeaders: Record<string, string | number>): Promise<void> => {
    const { properties } = message;
    const headers: Record<string, unknown> = { ...properties.headers };
    for (const name of BROKER_DEATH_HEADERS) delete headers[name];
    Object.assign(headers, extraHeaders);
    const publishOptions: Options.Publish = {
      persistent: true,
      headers,
      messageId: properties.messageId,
      type: properties.type,
      contentType: properties.contentType,
      contentEncoding: properties.contentEncoding,
      correlationId: properties.correlationId,
      timestamp: properties.timestamp,
      appId: properties.appId,
      priority: properties.priority,
    };
    try {
      await publishConfirmed(from, exchange, message.fields.routingKey, message.content, publishOptions, deps.confirmTimeoutMs);
    } catch (error) {
      if (abandoned) return;
      log.warn({ messageId: properties.messageId, exchange, err: describeError(error) }, "could not publish the copy; returning the message to the queue");
      nack(from, message);
      return;
    }
    if (!abandoned) ack(from, message);
  };

  const ack = (from: ConfirmChannel, message: ConsumeMessage): void => {
    try {
      from.ack(message);
    } catch {
      // The channel closed under us: the broker has already put the message back.
    }
  };
  const nack = (from: ConfirmChannel, message: ConsumeMessage): void => {
    try {
      from.nack(message, false, true);
    } catch {
      // As for ack: a closed channel's unacked messages are requeued by the broker.
    }
  };

  const attached: AttachedConsumer = {
    attach(model, duringSetup) {
      if (stopping) return Promise.resolve();
      if (attachedTo === model) return attaching ?? Promise.resolve();
      attachedTo = model;
      const attempt = open(model, duringSetup);
      attaching = attempt;
      return attempt.finally(() => {
        if (attaching === attempt) attaching = undefined;
      });
    },
    stop() {
      stopping ??= (async () => {
        deps.forget(attached);
        clearTimeout(reattachTimer);
        if (!isReady) failReady(new Error(`${options.queue}: the consumer was stopped before it subscribed`));
        await attaching?.catch(() => undefined);
        const current = channel;
        // No new deliveries from here on; some may still be on the wire (nacked in onMessage).
        if (current && consumerTag) await current.cancel(consumerTag).catch(() => undefined);
        const drained = await settleWithin([...inFlight], deps.drainTimeoutMs);
        if (!drained) {
          abandoned = true;
          log.warn({ inFlight: inFlight.size, drainTimeoutMs: deps.drainTimeoutMs }, "handlers still running at shutdown; their messages go back to the queue");
        }
        channel = undefined;
        // Closing the channel returns every unacked message to the queue.
        if (current) await current.close().catch(() => undefined);
        log.info("consumer stopped");
      })();
      return stopping;
    },
  };

  return {
    attached,
    consumer: {
      ready: () => readiness,
      stop: () => attached.stop(),
    },
  };
}

function publishConfirmed(channel: ConfirmChannel, exchange: string, routingKey: string, content: Buffer, options: Options.Publish, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the broker did not confirm within ${timeoutMs} ms`)), timeoutMs);
    try {
      // The callback fires on the broker's ack, on its nack, or when the channel closes first.
      channel.publish(exchange, routingKey, content, options, (error: unknown) => {
        clearTimeout(timer);
        if (error) reject(error instanceof Error ? error : new Error(`the broker refused the message (${String(error)})`));
        else resolve();
      });
    } catch (error) {
      clearTimeout(timer);
      reject(error instanceof Error ? error : new Error(String(error)));
    }
  });
}

/** True when every promise settled within the time; false when time ran out first. */
async function settleWithin(work: readonly Promise<unknown>[], timeoutMs: number): Promise<boolean> {
  if (work.length === 0) return true;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([Promise.allSettled(work).then(() => true as const), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** The creation time: the publisher's millisecond header, else AMQP's timestamp (whole seconds). */
function createdAtOf(headers: MessagePropertyHeaders, timestamp: unknown): { createdAt?: Date } {
  const ms = Number(headers[CREATED_AT_MS_HEADER]);
  if (Number.isFinite(ms) && ms > 0) return { createdAt: new Date(ms) };
  return typeof timestamp === "number" && timestamp > 0 ? { createdAt: new Date(timestamp * 1000) } : {};
}

/** Headers a handler can use: strings and numbers (RabbitMQ's own tables and arrays are left out). */
function primitiveHeaders(headers: MessagePropertyHeaders): Record<string, string | number> {
  const result: Record<string, string | number> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value === "string" || typeof value === "number") result[name] = value;
  }
  return result;
}
