import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { createWatchHub } from "./watch-hub.js";

const never = new AbortController().signal;

/** "woken" when the wait has already ended, "asleep" when it is still pending: no clock involved (a settled promise's callbacks run before the next macrotask). */
async function state(wait: Promise<void>): Promise<"woken" | "asleep"> {
  return Promise.race([wait.then(() => "woken" as const), new Promise<"asleep">((resolve) => setImmediate(() => resolve("asleep")))]);
}

describe("watch hub", () => {
  test("a change that lands before the stream waits is not slept through", async () => {
    const hub = createWatchHub();
    const subscription = hub.watch("ada");
    hub.notify("ada");
    const started = Date.now();
    await subscription.changed(60_000, never);
    assert.ok(Date.now() - started < 1000);
    subscription.close();
  });

  test("a change committed between the stream's read and its wait ends the wait, so the stream re-reads and sends it", async () => {
    // The lost-wakeup race, made to happen every time: the record changes
    // (and its writer notifies) right after the stream has read it and
    // before the stream waits. The poll is a minute away.
    const hub = createWatchHub();
    let record = { version: 1 };
    const readThenChange = (): { version: number } => {
      const seen = record;
      record = { version: 2 };
      hub.notify("order-1");
      return seen;
    };
    const subscription = hub.watch("order-1");
    const sent = [readThenChange().version];
    const wait = subscription.changed(60_000, never);
    assert.equal(await state(wait), "woken", "the change after the read ended the wait");
    sent.push(record.version);
    assert.deepEqual(sent, [1, 2]);
    assert.equal(await state(subscription.changed(60_000, never)), "asleep", "with nothing new, the next wait sleeps");
    subscription.close();
  });

  test("a change during the re-read after a wake-up is not missed either", async () => {
    const hub = createWatchHub();
    const subscription = hub.watch("order-1");
    const first = subscription.changed(60_000, never);
    hub.notify("order-1");
    await first;
    // The stream now re-reads; a second change lands before it waits again.
    hub.notify("order-1");
    assert.equal(await state(subscription.changed(60_000, never)), "woken");
    subscription.close();
  });

  test("subscribing after a change does not report it: streams must subscribe before they read", async () => {
    const hub = createWatchHub();
    hub.notify("order-1");
    const late = hub.watch("order-1");
    assert.equal(await state(late.changed(60_000, never)), "asleep");
    late.close();
  });

  test("every subscription to the key is woken by one change", async () => {
    const hub = createWatchHub();
    const first = hub.watch("order-1");
    const second = hub.watch("order-1");
    const waits = [first.changed(60_000, never), second.changed(60_000, never)];
    hub.notify("order-1");
    assert.deepEqual(await Promise.all(waits.map(state)), ["woken", "woken"]);
    first.close();
    second.close();
  });

  test("a waiting stream wakes on its user's change only, and otherwise at the poll interval", async () => {
    const hub = createWatchHub();
    const ada = hub.watch("ada");
    let woken = false;
    const waiting = ada.changed(60_000, never).then(() => {
      woken = true;
    });
    hub.notify("bob");
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(woken, false, "bob's change is not ada's");
    hub.notify("ada");
    await waiting;
    const started = Date.now();
    await ada.changed(30, never);
    assert.ok(Date.now() - started >= 25, "no change: it waits for the poll interval");
    ada.close();
  });

  test("cancelling or closing ends the wait, and the watcher count follows subscriptions", async () => {
    const counts: number[] = [];
    const hub = createWatchHub((count) => counts.push(count));
    const first = hub.watch("ada");
    const second = hub.watch("ada");
    assert.equal(hub.watchers(), 2);
    const abort = new AbortController();
    const cancelled = first.changed(60_000, abort.signal);
    abort.abort();
    await cancelled;
    const closing = second.changed(60_000, never);
    second.close();
    await closing;
    first.close();
    first.close();
    assert.equal(hub.watchers(), 0);
    assert.deepEqual(counts, [1, 2, 1, 0]);
  });
});
