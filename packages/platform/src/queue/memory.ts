import type { Logger } from "../logger.js";
import type { MemoryBroker } from "../messaging/memory-broker.js";
import { topicMatches, type OutgoingMessage } from "../messaging/ports.js";
import { attemptOf, checkTopology, describeError, exhaustedReason, LAST_ERROR_HEADER, nextStep, unparseableReason } from "./failure.js";
import { ATTEMPT_HEADER, DEAD_LETTER_REASON_HEADER, type Consumer, type ConsumerOptions, type Delivery, type TaskQueue } from "./ports.js";

/** Timers for retry delays and the shutdown bound; a test can pass its own. */
export interface QueueClock {
  /** Runs `callback` once after `delayMs`; the returned function cancels it. */
  schedule(callback: () => void, delayMs: number): () => void;
}

export const systemQueueClock: QueueClock = {
  schedule(callback, delayMs) {
    const timer = setTimeout(callback, delayMs);
    return () => clearTimeout(timer);
  },
};

/** A message in a dead-letter list, as the RabbitMQ adapter would have put it in `<queue>.dead`. */
export interface DeadLetter {
  readonly messageId: string;
  /** The routing key it was published with. */
  readonly routingKey: string;
  readonly type: string;
  readonly contentType: string;
  /** Its headers, with DEAD_LETTER_REASON_HEADER and ATTEMPT_HEADER added. */
  readonly headers: Readonly<Record<string, string | number>>;
  readonly body: Uint8Array;
  readonly reason: string;
}

export interface MemoryTaskQueue extends TaskQueue {
  /** The dead letters of a work queue, oldest first (empty for an unknown queue). */
  deadLetters(queue: string): readonly DeadLetter[];
  /** Calls `listener` for every message dead-lettered from now on. Returns an unsubscribe function. */
  onDeadLetter(listener: (queue: string, letter: DeadLetter) => void): () => void;
}

export interface MemoryTaskQueueOptions {
  /** The in-process exchanges the all-in-one mode's publishers use. */
  readonly broker: MemoryBroker;
  readonly log: Logger;
  readonly clock?: QueueClock;
  /** How long stop() lets in-flight handlers finish before their messages go back to the queue (default 10 s). */
  readonly drainTimeoutMs?: number;
}

interface Entry {
  readonly message: OutgoingMessage;
  readonly attempt: number;
}

interface Running {
  readonly entry: Entry;
  /** Set when stop() gave up on it: the message is back in the queue and the handler's outcome is ignored. */
  abandoned: boolean;
}

interface ConsumerSlot {
  readonly prefetch: number;
  running: number;
  take(entry: Entry): void;
}

interface QueueState {
  readonly name: string;
  readonly retryDelaysMs: readonly number[];
  /** exchange -> binding patterns; one broker subscription per exchange, so a message matching two bindings arrives once, as in RabbitMQ. */
  readonly bindings: Map<string, Set<string>>;
  readonly unsubscribes: (() => void)[];
  readonly ready: Entry[];
  readonly consumers: ConsumerSlot[];
  readonly deadLetters: DeadLetter[];
  /** Round-robin position among consumers, so competing consumers share the work. */
  cursor: number;
  dispatchScheduled: boolean;
}

/**
 * The task queue of the all-in-one mode, with the RabbitMQ adapter's
 * semantics in process: a FIFO per work queue fed by the memory broker's
 * topic exchange through the queue's bindings and shared by competing
 * consumers; at most `prefetch` handlers per consumer; a failed message is
 * re-queued to its own queue only (with its original routing key) after the
 * same growing delays, then dead-lettered with the reason; an unparseable one
 * is dead-lettered at once. Nothing survives the process: that is the
 * all-in-one mode's trade, and why production uses RabbitMQ.
 */
export function createMemoryTaskQueue(options: MemoryTaskQueueOptions): MemoryTaskQueue {
  const { broker, log } = options;
  const clock = options.clock ?? systemQueueClock;
  const drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
  const queues = new Map<string, QueueState>();
  const stops = new Set<() => Promise<void>>();
  const retryTimers = new Set<() => void>();
  const deadLetterListeners = new Set<(queue: string, letter: DeadLetter) => void>();
  let closed = false;

  const scheduleDispatch = (state: QueueState): void => {
    if (state.dispatchScheduled) return;
    state.dispatchScheduled = true;
    // A hop through the event loop, as through a broker: a publisher never runs handlers on its own stack.
    setImmediate(() => {
      state.dispatchScheduled = false;
      dispatch(state);
    });
  };

  const dispatch = (state: QueueState): void => {
    while (state.ready.length > 0) {
      const consumer = nextFree(state);
      if (!consumer) return;
      const entry = state.ready.shift();
      if (entry) consumer.take(entry);
    }
  };

  const nextFree = (state: QueueState): ConsumerSlot | undefined => {
    const count = state.consumers.length;
    for (let offset = 0; offset < count; offset++) {
      const index = (state.cursor + offset) % count;
      const consumer = state.consumers[index];
      if (consumer && consumer.running < consumer.prefetch) {
        state.cursor = (index + 1) % count;
        return consumer;
      }
    }
    return undefined;
  };

  const enqueue = (state: QueueState, entries: readonly Entry[], atFront = false): void => {
    if (closed) return;
    if (atFront) state.ready.unshift(...entries);
    else state.ready.push(...entries);
    scheduleDispatch(state);
  };

  const deadLetter = (state: QueueState, message: OutgoingMessage, attempt: number, reason: string, extraHeaders: Record<string, string | number> = {}): void => {
    const letter: DeadLetter = {
      messageId: message.messageId,
      routingKey: message.routingKey,
      type: message.type,
      contentType: message.contentType,
      headers: { ...message.headers, ...extraHeaders, [ATTEMPT_HEADER]: attempt, [DEAD_LETTER_REASON_HEADER]: reason },
      body: message.body,
      reason,
    };
    state.deadLetters.push(letter);
    for (const listener of deadLetterListeners) listener(state.name, letter);
  };

  /** Declares the queue (or finds it) and adds the bindings, as queue.declare and queue.bind would. */
  const declare = (topology: ConsumerOptions<unknown>): QueueState => {
    let state = queues.get(topology.queue);
    if (!state) {
      state = {
        name: topology.queue,
        retryDelaysMs: [...topology.retryDelaysMs],
        bindings: new Map(),
        unsubscribes: [],
        ready: [],
        consumers: [],
        deadLetters: [],
        cursor: 0,
        dispatchScheduled: false,
      };
      queues.set(topology.queue, state);
    } else if (state.retryDelaysMs.join() !== topology.retryDelaysMs.join()) {
      // RabbitMQ refuses a delay queue redeclared with another TTL (PRECONDITION_FAILED); so does this.
      throw new Error(`${topology.queue}: declared with retry delays [${state.retryDelaysMs.join(", ")}], not [${topology.retryDelaysMs.join(", ")}]`);
    }
    const declared = state;
    let patterns = declared.bindings.get(topology.exchange);
    if (!patterns) {
      const exchangePatterns = new Set<string>();
      patterns = exchangePatterns;
      declared.bindings.set(topology.exchange, exchangePatterns);
      declared.unsubscribes.push(
        broker.subscribe(topology.exchange, "#", (message) => {
          for (const pattern of exchangePatterns) {
            if (topicMatches(pattern, message.routingKey)) {
              enqueue(declared, [{ message, attempt: attemptOf(message.headers[ATTEMPT_HEADER]) }]);
              return;
            }
          }
        }),
      );
    }
    for (const pattern of topology.bindings) patterns.add(pattern);
    return declared;
  };

  const settleWithin = (work: readonly Promise<unknown>[], timeoutMs: number): Promise<boolean> => {
    if (work.length === 0) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const cancel = clock.schedule(() => resolve(false), timeoutMs);
      void Promise.allSettled(work).then(() => {
        cancel();
        resolve(true);
      });
    });
  };

  return {
    consume<T>(consumerOptions: ConsumerOptions<T>): Consumer {
      checkTopology(consumerOptions, consumerOptions.prefetch);
      if (closed) throw new Error("the task queue is closed");
      const queueLog = log.child({ queue: consumerOptions.queue });
      let state: QueueState;
      try {
        state = declare(consumerOptions as ConsumerOptions<unknown>);
      } catch (error) {
        const refused = Promise.reject(error instanceof Error ? error : new Error(String(error)));
        refused.catch(() => undefined);
        queueLog.error({ err: describeError(error) }, "queue declaration refused");
        return { ready: () => refused, stop: async () => {} };
      }

      const running = new Map<Promise<void>, Running>();
      let stopping: Promise<void> | undefined;

      const handleEntry = async (record: Running): Promise<void> => {
        const { message, attempt } = record.entry;
        const context = { messageId: message.messageId, routingKey: message.routingKey, attempt };
        let body: T;
        try {
          body = consumerOptions.parse(message.body, message.contentType);
        } catch (error) {
          const reason = unparseableReason(error);
          queueLog.warn({ ...context, reason }, "unparseable message: dead-lettering it");
          deadLetter(state, message, attempt, reason);
          return;
        }
        const delivery: Delivery<T> = {
          messageId: message.messageId,
          routingKey: message.routingKey,
          type: message.type,
          headers: message.headers,
          body,
          attempt,
          createdAt: message.timestamp,
        };
        let failure: { error: unknown } | undefined;
        try {
          await consumerOptions.handle(delivery);
        } catch (error) {
          failure = { error };
        }
        if (record.abandoned || !failure) return;
        const lastError = describeError(failure.error);
        const step = nextStep(attempt, state.retryDelaysMs);
        if (step.kind === "dead-letter") {
          const reason = exhaustedReason(attempt, failure.error);
          queueLog.error({ ...context, reason }, "handler failed on every attempt: dead-lettering the message");
          deadLetter(state, message, attempt, reason, { [LAST_ERROR_HEADER]: lastError });
          return;
        }
        queueLog.warn({ ...context, err: lastError, retryInMs: step.delayMs }, "handler failed; retrying later");
        // The copy goes back to this queue only, like RabbitMQ's per-queue delay queues.
        const copy: OutgoingMessage = { ...message, headers: { ...message.headers, [ATTEMPT_HEADER]: step.nextAttempt, [LAST_ERROR_HEADER]: lastError } };
        const cancel = clock.schedule(() => {
          retryTimers.delete(cancel);
          enqueue(state, [{ message: copy, attempt: step.nextAttempt }]);
        }, step.delayMs);
        retryTimers.add(cancel);
      };

      const slot: ConsumerSlot = {
        prefetch: consumerOptions.prefetch,
        running: 0,
        take(entry) {
          slot.running++;
          const record: Running = { entry, abandoned: false };
          const work: Promise<void> = handleEntry(record)
            .catch((error: unknown) => queueLog.error({ err: describeError(error) }, "message processing failed unexpectedly"))
            .finally(() => {
              running.delete(work);
              slot.running--;
              scheduleDispatch(state);
            });
          running.set(work, record);
        },
      };
      state.consumers.push(slot);
      scheduleDispatch(state);

      const stop = (): Promise<void> => {
        stopping ??= (async () => {
          const index = state.consumers.indexOf(slot);
          if (index >= 0) state.consumers.splice(index, 1);
          const drained = await settleWithin([...running.keys()], drainTimeoutMs);
          if (!drained) {
            const left = [...running.values()];
            queueLog.warn({ inFlight: left.length, drainTimeoutMs }, "handlers still running at shutdown; their messages go back to the queue");
            for (const record of left) record.abandoned = true;
            // Back to the head of the queue, in their order, as a closed AMQP channel's unacked messages are.
            enqueue(
              state,
              left.map((record) => record.entry),
              true,
            );
          }
          stops.delete(stop);
        })();
        return stopping;
      };
      stops.add(stop);
      return { ready: async () => {}, stop };
    },

    async depth(queue) {
      return queues.get(queue)?.ready.length;
    },
    async close() {
      if (closed) return;
      await Promise.all([...stops].map((stop) => stop()));
      closed = true;
      if (retryTimers.size > 0) log.warn({ waiting: retryTimers.size }, "closing with messages waiting for a retry: they are dropped (the in-process queue keeps nothing)");
      for (const cancel of retryTimers) cancel();
      retryTimers.clear();
      for (const state of queues.values()) for (const unsubscribe of state.unsubscribes) unsubscribe();
    },

    deadLetters(queue) {
      return [...(queues.get(queue)?.deadLetters ?? [])];
    },

    onDeadLetter(listener) {
      deadLetterListeners.add(listener);
      return () => deadLetterListeners.delete(listener);
    },
  };
}
