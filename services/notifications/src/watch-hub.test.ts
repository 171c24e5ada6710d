import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { createWatchHub } from "./watch-hub.js";

const never = new AbortController().signal;

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

  test("a waiting stream wakes on its user's change only, and otherwise at the poll interval", async () => {
    const hub = createWatchHub();
    const ada = hub.watch("ada");
    let woken = false;
    const waiting = ada.changed(60_000, never).then(() => void (woken = true));
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
