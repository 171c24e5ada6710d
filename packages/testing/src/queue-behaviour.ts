/**
 * What every TaskQueue adapter must do. queue.test.ts runs this one suite
 * against the in-process queue and against RabbitMQ, so they cannot drift.
 *
 * Each test gets a fixture with its own exchange (and, on RabbitMQ, removes
 * every queue and exchange it made). Waits are for events (a handler call, a
 * dead letter), each bounded. "Nothing else arrived" is shown with a marker
 * message published afterwards: queues are FIFO, so anything that should not
 * have been there would have been handled before the marker.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, test } from "vitest";
import type { TestScope } from "./scope.js";
import { performance } from "node:perf_hooks";
import { LAST_ERROR_HEADER } from "@meshwork/platform";
import {
  ATTEMPT_HEADER,
  DEAD_LETTER_REASON_HEADER,
  type Consumer,
  type MessagePublisher,
  type OutgoingMessage,
  type ConsumerOptions,
  type Delivery,
  type QueueTopology,
  type TaskQueue,
} from "@meshwork/platform";

/** stop()'s bound on in-flight handlers that fixtures give their adapter. */
export const SUITE_DRAIN_TIMEOUT_MS = 500;
/** Short delays, so the suite runs in seconds; the order and the sum are what is checked. */
export const SUITE_RETRY_DELAYS_MS: readonly number[] = [50, 100];
/** The message type fixtures publish with. */
export const MESSAGE_TYPE = "test.queue.v1.Event";

export interface DeadLetterView {
  readonly messageId: string;
  readonly routingKey: string;
  readonly headers: Readonly<Record<string, unknown>>;
  readonly body: Uint8Array;
}

export interface PublishExtras {
  readonly headers?: Readonly<Record<string, string | number>>;
}

export interface QueueFixture {
  /** Built with drainTimeoutMs = SUITE_DRAIN_TIMEOUT_MS; closed after the test. */
  readonly queue: TaskQueue;
  /** A topology on this test's exchange with a queue named after `label` (removed after the test on a real broker). */
  topology(label: string, bindings: readonly string[], retryDelaysMs?: readonly number[]): QueueTopology;
  /** Publishes to this test's exchange (type MESSAGE_TYPE, a fresh message id) and waits for the confirm; returns the id. */
  publish(routingKey: string, body: string | Uint8Array, extras?: PublishExtras): Promise<string>;
  /** Resolves with the dead letters of `queue` once there are at least `count` (rejects after a bound). */
  deadLetters(queue: string, count: number): Promise<readonly DeadLetterView[]>;
}

export type QueueFixtureFactory = (t: TestScope) => Promise<QueueFixture | undefined>;

const WAIT_MS = 15_000;
/**
 * Timers fire no earlier than their delay by the event loop's cached clock,
 * which can trail performance.now() by a fraction of a millisecond per hop.
 */
const TIMER_SLACK_MS = 2;

interface Body {
  readonly n: number;
}
const json = (value: unknown): string => JSON.stringify(value);
const parseJson = (body: Uint8Array): Body => JSON.parse(new TextDecoder().decode(body)) as Body;

export interface EventLog<T> {
  readonly items: T[];
  push(item: T): void;
  /** Resolves once `done(items)` holds, re-checked at every push; rejects after `timeoutMs`. */
  until(done: (seen: readonly T[]) => boolean, condition: string, timeoutMs?: number): Promise<readonly T[]>;
}

/** Things that happen, and a bounded wait for a condition on them. */
export function createEventLog<T>(what: string): EventLog<T> {
  const items: T[] = [];
  const waiters = new Set<() => void>();
  return {
    items,
    push(item) {
      items.push(item);
      for (const waiter of [...waiters]) waiter();
    },
    until(done, condition, timeoutMs = WAIT_MS) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (!done(items)) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(items);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${what}: ${condition} did not happen within ${timeoutMs} ms (${items.length} so far)`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}

interface Seen {
  readonly delivery: Delivery<Body>;
  readonly at: number;
  readonly consumer: string;
}

/** A promise to resolve from outside: the handler waits on it until the test lets it go. */
function createGate(): { readonly opened: Promise<void>; open(): void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

/** Releases the handlers waiting on it once `size` of them wait together. */
function createBarrier(size: number): () => Promise<void> {
  let waiting: (() => void)[] = [];
  return () =>
    new Promise<void>((resolve) => {
      waiting.push(resolve);
      if (waiting.length < size) return;
      for (const release of waiting) release();
      waiting = [];
    });
}

function consumerOf(queue: TaskQueue, topology: QueueTopology, handle: (delivery: Delivery<Body>) => Promise<void>, prefetch = 1): Consumer {
  const options: ConsumerOptions<Body> = { ...topology, prefetch, parse: parseJson, handle };
  return queue.consume(options);
}

function recorder(log: EventLog<Seen>, consumer: string): (delivery: Delivery<Body>) => Promise<void> {
  return async (delivery) => log.push({ delivery, at: performance.now(), consumer });
}

export function taskQueueBehaviour(adapter: string, open: QueueFixtureFactory): void {
  describe(`TaskQueue behaviour: ${adapter}`, () => {
    test("a message is handled once, with its id, routing key, type, headers and parsed body, and then acked", async (t) => {
      const fixture = await open(t);
      if (!fixture) return;
      const topology = fixture.topology("once", ["order.#"]);
      const seen = createEventLog<Seen>("first consumer");
      const first = consumerOf(fixture.queue, topology, recorder(seen, "first"));
      await first.ready();

      await fixture.publish("customer.created", json({ n: 0 }));
      const id = await fixture.publish("order.confirmed", json({ n: 1 }), { headers: { "x-schema-version": 2, "x-request-id": "req-1" } });
      await seen.until((items) => items.length >= 1, "one delivery");
      const [only] = seen.items;
      assert.ok(only);
      assert.equal(only.delivery.messageId, id);
      assert.equal(only.delivery.routingKey, "order.confirmed", "the binding order.# let order.confirmed in, not customer.created");
      assert.equal(only.delivery.type, MESSAGE_TYPE);
      assert.deepEqual(only.delivery.body, { n: 1 });
      assert.equal(only.delivery.attempt, 1);
      assert.equal(only.delivery.headers["x-schema-version"], 2);
      assert.equal(only.delivery.headers["x-request-id"], "req-1");

      // Acked: after a restart of the consumer nothing comes back before a new message.
      await first.stop();
      const next = createEventLog<Seen>("second consumer");
      const second = consumerOf(fixture.queue, topology, recorder(next, "second"));
      await second.ready();
      const marker = await fixture.publish("order.shipped", json({ n: 2 }));
      await next.until((items) => items.some((item) => item.delivery.messageId === marker), "the marker");
      assert.deepEqual(
        next.items.map((item) => item.delivery.messageId),
        [marker],
      );
      assert.equal(seen.items.length, 1);
      await second.stop();
    });

    test("a handler that fails twice then succeeds runs three times, after the back-off, with the original routing key each time", async (t) => {
      const fixture = await open(t);
      if (!fixture) return;
      const topology = fixture.topology("flaky", ["order.#"], SUITE_RETRY_DELAYS_MS);
      const seen = createEventLog<Seen>("flaky handler");
      const consumer = consumerOf(fixture.queue, topology, async (delivery) => {
        seen.push({ delivery, at: performance.now(), consumer: "flaky" });
        if (seen.items.length <= 2) throw new Error(`flaky failure ${seen.items.length}`);
      });
      await consumer.ready();

      const id = await fixture.publish("order.confirmed", json({ n: 7 }));
      await seen.until((items) => items.length >= 3, "three attempts");
      const [first, second, third] = seen.items;
      assert.ok(first && second && third);
      assert.deepEqual(
        seen.items.map((item) => item.delivery.attempt),
        [1, 2, 3],
      );
      assert.deepEqual(new Set(seen.items.map((item) => item.delivery.messageId)), new Set([id]));
      assert.deepEqual(
        seen.items.map((item) => item.delivery.routingKey),
        ["order.confirmed", "order.confirmed", "order.confirmed"],
      );
      assert.deepEqual(
        seen.items.map((item) => item.delivery.body),
        [{ n: 7 }, { n: 7 }, { n: 7 }],
      );
      assert.equal(second.delivery.headers[LAST_ERROR_HEADER], "flaky failure 1", "a retry says why the last attempt failed");
      assert.equal(third.delivery.headers[ATTEMPT_HEADER], 3);
      const [firstDelay = 0, secondDelay = 0] = SUITE_RETRY_DELAYS_MS;
      assert.ok(second.at - first.at >= firstDelay - TIMER_SLACK_MS, `first retry after ${(second.at - first.at).toFixed(1)} ms, expected ≥ ${firstDelay}`);
      assert.ok(third.at - first.at >= firstDelay + secondDelay - TIMER_SLACK_MS, `success after ${(third.at - first.at).toFixed(1)} ms, expected ≥ ${firstDelay + secondDelay}`);

      // Delivered once as a success: acked, so nothing of it is handled again before a later message.
      const marker = await fixture.publish("order.shipped", json({ n: 8 }));
      await seen.until((items) => items.some((item) => item.delivery.messageId === marker), "the marker");
      assert.deepEqual(
        seen.items.map((item) => item.delivery.messageId),
        [id, id, id, marker],
      );
      await consumer.stop();
    });

    test("a handler that always fails ends in the dead-letter queue after the last retry, with the reason in a header", async (t) => {
      const fixture = await open(t);
      if (!fixture) return;
      const topology = fixture.topology("doomed", ["order.#"], SUITE_RETRY_DELAYS_MS);
      const seen = createEventLog<Seen>("failing handler");
      const consumer = consumerOf(fixture.queue, topology, async (delivery) => {
        seen.push({ delivery, at: performance.now(), consumer: "doomed" });
        throw new Error("mail relay refused the connection");
      });
      await consumer.ready();

      const id = await fixture.publish("order.rejected", json({ n: 3 }), { headers: { "x-request-id": "req-3" } });
      const [letter] = await fixture.deadLetters(topology.queue, 1);
      assert.ok(letter);
      assert.equal(letter.messageId, id);
      assert.equal(letter.routingKey, "order.rejected", "the dead letter keeps its original routing key");
      assert.deepEqual(parseJson(letter.body), { n: 3 });
      const reason = String(letter.headers[DEAD_LETTER_REASON_HEADER]);
      assert.match(reason, /failed 3 attempts/);
      assert.match(reason, /mail relay refused the connection/);
      assert.equal(letter.headers[ATTEMPT_HEADER], 3);
      assert.equal(letter.headers["x-request-id"], "req-3");
      assert.deepEqual(
        seen.items.map((item) => item.delivery.attempt),
        [1, 2, 3],
        "one attempt per retry delay, plus the first",
      );
      await consumer.stop();
    });

    test("a malformed message goes straight to the dead-letter queue with the parse error, and the consumer keeps consuming", async (t) => {
      const fixture = await open(t);
      if (!fixture) return;
      const topology = fixture.topology("malformed", ["order.#"], SUITE_RETRY_DELAYS_MS);
      const seen = createEventLog<Seen>("handler");
      const consumer = consumerOf(fixture.queue, topology, recorder(seen, "one"));
      await consumer.ready();

      const garbage = "{not json";
      const parseError = ((): string => {
        try {
          JSON.parse(garbage);
          return "(no error)";
        } catch (error) {
          return (error as Error).message;
        }
      })();
      const bad = await fixture.publish("order.confirmed", garbage);
      const good = await fixture.publish("order.confirmed", json({ n: 4 }));
      const [letter] = await fixture.deadLetters(topology.queue, 1);
      assert.ok(letter);
      assert.equal(letter.messageId, bad);
      assert.equal(new TextDecoder().decode(letter.body), garbage);
      const reason = String(letter.headers[DEAD_LETTER_REASON_HEADER]);
      assert.ok(reason.includes(parseError), `reason "${reason}" names the parse error "${parseError}"`);
      assert.equal(letter.headers[ATTEMPT_HEADER], 1, "no retry: it can never be parsed");

      await seen.until((items) => items.some((item) => item.delivery.messageId === good), "the good message");
      assert.deepEqual(
        seen.items.map((item) => item.delivery.messageId),
        [good],
        "the handler never sees the malformed message",
      );
      await consumer.stop();
    });

    test("two consumers on one queue share the work: each message is handled once, and both handle some", async (t) => {
      const fixture = await open(t);
      if (!fixture) return;
      const topology = fixture.topology("competing", ["order.#"]);
      const seen = createEventLog<Seen>("competing consumers");
      // Each takes one message at a time, and a message is let go only while
      // the other consumer holds one too: this passes only if both get work.
      const together = createBarrier(2);
      const consumerNamed = (name: string): Consumer =>
        consumerOf(fixture.queue, topology, async (delivery) => {
          await together();
          seen.push({ delivery, at: performance.now(), consumer: name });
        });
      const left = consumerNamed("left");
      const right = consumerNamed("right");
      await Promise.all([left.ready(), right.ready()]);

      const ids: string[] = [];
      for (let n = 0; n < 10; n++) ids.push(await fixture.publish(`order.n${n}`, json({ n })));
      await seen.until((items) => items.length >= ids.length, `${ids.length} messages`);
      assert.deepEqual(seen.items.map((item) => item.delivery.messageId).sort(), [...ids].sort(), "each message once");
      const byLeft = seen.items.filter((item) => item.consumer === "left").length;
      assert.ok(byLeft > 0 && byLeft < ids.length, `left handled ${byLeft} of ${ids.length}`);
      await Promise.all([left.stop(), right.stop()]);
    });

    test("prefetch bounds concurrency: never more handlers at once than the prefetch", async (t) => {
      const fixture = await open(t);
      if (!fixture) return;
      const prefetch = 3;
      const topology = fixture.topology("prefetch", ["order.#"]);
      const seen = createEventLog<Seen>("bounded handlers");
      let active = 0;
      let most = 0;
      // Handlers finish in groups of `prefetch`, so the adapter has every chance to start more.
      const group = createBarrier(prefetch);
      // Every message waits in the queue before the consumer starts, so
      // nothing but the prefetch holds the adapter back.
      const declaring = consumerOf(fixture.queue, topology, async () => assert.fail("the declaring consumer gets nothing"));
      await declaring.ready();
      await declaring.stop();
      const total = prefetch * 4;
      for (let n = 0; n < total; n++) await fixture.publish("order.confirmed", json({ n }));
      const consumer = consumerOf(
        fixture.queue,
        topology,
        async (delivery) => {
          active++;
          most = Math.max(most, active);
          await group();
          active--;
          seen.push({ delivery, at: performance.now(), consumer: "bounded" });
        },
        prefetch,
      );
      await consumer.ready();
      await seen.until((items) => items.length >= total, `${total} messages`);
      assert.equal(most, prefetch, `at most ${prefetch} at once, and that many in parallel`);
      await consumer.stop();
    });

    test("stop() waits for an in-flight handler to finish, and its message is acked, not redelivered", async (t) => {
      const fixture = await open(t);
      if (!fixture) return;
      const topology = fixture.topology("drain", ["order.#"]);
      const events: string[] = [];
      const started = createEventLog<string>("in-flight handler");
      const gate = createGate();
      const first = consumerOf(fixture.queue, topology, async (delivery) => {
        started.push(delivery.messageId);
        await gate.opened;
        events.push("handler finished");
      });
      await first.ready();
      const id = await fixture.publish("order.confirmed", json({ n: 5 }));
      await started.until((items) => items.includes(id), "the handler starting");

      const stopped = first.stop().then(() => events.push("stop resolved"));
      // Let the handler go a little later (well within the bound): a stop()
      // that did not wait would resolve first.
      setTimeout(gate.open, 100);
      await stopped;
      assert.deepEqual(events, ["handler finished", "stop resolved"]);

      const next = createEventLog<Seen>("next consumer");
      const second = consumerOf(fixture.queue, topology, recorder(next, "second"));
      await second.ready();
      const marker = await fixture.publish("order.shipped", json({ n: 6 }));
      await next.until((items) => items.some((item) => item.delivery.messageId === marker), "the marker");
      assert.deepEqual(
        next.items.map((item) => item.delivery.messageId),
        [marker],
        "the drained message was acked",
      );
      await second.stop();
    });

    test("a message whose handler outlasts stop()'s bound goes back to the queue and is handled by the next consumer", async (t) => {
      const fixture = await open(t);
      if (!fixture) return;
      const topology = fixture.topology("handback", ["order.#"], SUITE_RETRY_DELAYS_MS);
      const started = createEventLog<string>("stuck handler");
      const gate = createGate();
      try {
        const stuck = consumerOf(fixture.queue, topology, async (delivery) => {
          started.push(delivery.messageId);
          await gate.opened;
        });
        await stuck.ready();
        const id = await fixture.publish("order.confirmed", json({ n: 9 }));
        await started.until((items) => items.includes(id), "the handler starting");
        const before = performance.now();
        await stuck.stop();
        assert.ok(performance.now() - before >= SUITE_DRAIN_TIMEOUT_MS - TIMER_SLACK_MS, "stop() waited for the bound");

        const next = createEventLog<Seen>("next consumer");
        const second = consumerOf(fixture.queue, topology, recorder(next, "second"));
        await second.ready();
        await next.until((items) => items.some((item) => item.delivery.messageId === id), "the redelivery");
        const [redelivered] = next.items;
        assert.equal(redelivered?.delivery.messageId, id);
        assert.equal(redelivered.delivery.attempt, 1, "handed back, not a failed attempt");
        assert.deepEqual(redelivered.delivery.body, { n: 9 });

        // The stuck handler finishing late changes nothing.
        gate.open();
        const marker = await fixture.publish("order.shipped", json({ n: 10 }));
        await next.until((items) => items.some((item) => item.delivery.messageId === marker), "the marker");
        assert.deepEqual(
          next.items.map((item) => item.delivery.messageId),
          [id, marker],
        );
        await second.stop();
      } finally {
        gate.open();
      }
    });

    test("a retry goes back to the failing queue only, not to another queue bound to the same exchange", async (t) => {
      const fixture = await open(t);
      if (!fixture) return;
      const failingTopology = fixture.topology("audit", ["order.#"], SUITE_RETRY_DELAYS_MS);
      const otherTopology = fixture.topology("mailer", ["order.#"], SUITE_RETRY_DELAYS_MS);
      const failing = createEventLog<Seen>("failing queue");
      const other = createEventLog<Seen>("other queue");
      const failingConsumer = consumerOf(fixture.queue, failingTopology, async (delivery) => {
        failing.push({ delivery, at: performance.now(), consumer: "audit" });
        if (delivery.attempt === 1) throw new Error("audit store busy");
      });
      const otherConsumer = consumerOf(fixture.queue, otherTopology, recorder(other, "mailer"));
      await Promise.all([failingConsumer.ready(), otherConsumer.ready()]);

      const id = await fixture.publish("order.confirmed", json({ n: 11 }));
      await failing.until((items) => items.length >= 2, "the retry");
      assert.deepEqual(
        failing.items.map((item) => [item.delivery.messageId, item.delivery.routingKey]),
        [
          [id, "order.confirmed"],
          [id, "order.confirmed"],
        ],
      );
      const marker = await fixture.publish("order.shipped", json({ n: 12 }));
      await other.until((items) => items.some((item) => item.delivery.messageId === marker), "the marker");
      assert.deepEqual(
        other.items.map((item) => item.delivery.messageId),
        [id, marker],
        "the other queue got the message once",
      );
      await Promise.all([failingConsumer.stop(), otherConsumer.stop()]);
    });

    test("a consumer whose retry delays differ from the queue's as declared is refused at ready(); the first keeps working", async (t) => {
      const fixture = await open(t);
      if (!fixture) return;
      const declared = fixture.topology("declared", ["order.#"], [50, 100]);
      const seen = createEventLog<Seen>("first consumer");
      const first = consumerOf(fixture.queue, declared, recorder(seen, "first"));
      await first.ready();
      const conflicting = consumerOf(fixture.queue, { ...declared, retryDelaysMs: [50, 200] }, async () => {});
      await assert.rejects(conflicting.ready(), /PRECONDITION_FAILED|retry delays/);
      await conflicting.stop();

      const id = await fixture.publish("order.confirmed", json({ n: 13 }));
      await seen.until((items) => items.some((item) => item.delivery.messageId === id), "the message reaching the first consumer");
      await first.stop();
    });
  });
}

/** A message for `exchange`, as the suite publishes it. */
export function outgoing(exchange: string, routingKey: string, body: string | Uint8Array, extras: PublishExtras = {}): OutgoingMessage {
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

export function topologyFor(exchange: string, label: string, bindings: readonly string[], retryDelaysMs: readonly number[] = []): QueueTopology {
  return { exchange, bindings, queue: `${exchange}.${label}`, retryDelaysMs };
}

export async function publishOne(publisher: MessagePublisher, message: OutgoingMessage): Promise<string> {
  await publisher.publish([message]);
  return message.messageId;
}
