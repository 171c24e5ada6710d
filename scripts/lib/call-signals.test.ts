import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { createCallSignals } from "./call-signals.js";

/** A call that lasts until released, and registers an abort listener on its signal as connect-es does. */
function pendingCall(signal: AbortSignal) {
  let release!: () => void;
  const done = new Promise<string>((resolve, reject) => {
    release = () => resolve("answered");
    signal.addEventListener("abort", () => reject(signal.reason));
  });
  return { done, release };
}

describe("call signals", () => {
  it("keep one abort listener on the stop signal however many calls are in flight or done", async () => {
    const stop = new AbortController();
    const calls = createCallSignals(stop.signal);
    const inFlight = Array.from({ length: 50 }, () => {
      let release!: () => void;
      const done = calls.run(async (signal) => {
        const call = pendingCall(signal);
        release = call.release;
        return call.done;
      });
      return { done, release: () => release() };
    });
    expect(calls.live).toBe(50);
    expect(getEventListeners(stop.signal, "abort")).toHaveLength(1);
    for (const call of inFlight) call.release();
    await Promise.all(inFlight.map((call) => call.done));
    expect(calls.live).toBe(0);
    expect(getEventListeners(stop.signal, "abort")).toHaveLength(1);
  });

  it("give each call a signal of its own", async () => {
    const calls = createCallSignals(new AbortController().signal);
    const signals: AbortSignal[] = [];
    await calls.run(async (signal) => void signals.push(signal));
    await calls.run(async (signal) => void signals.push(signal));
    expect(signals[0]).not.toBe(signals[1]);
  });

  it("abort every call in flight when the stop signal aborts", async () => {
    const stop = new AbortController();
    const calls = createCallSignals(stop.signal);
    const first = calls.run(async (signal) => pendingCall(signal).done);
    const second = calls.run(async (signal) => pendingCall(signal).done);
    stop.abort(new Error("stopped"));
    await expect(first).rejects.toThrow("stopped");
    await expect(second).rejects.toThrow("stopped");
    expect(calls.live).toBe(0);
  });

  it("hand a call started after the stop an already aborted signal", async () => {
    const stop = new AbortController();
    stop.abort();
    const calls = createCallSignals(stop.signal);
    expect(await calls.run(async (signal) => signal.aborted)).toBe(true);
  });

  it("forget a call that failed", async () => {
    const calls = createCallSignals(new AbortController().signal);
    await expect(calls.run(() => Promise.reject(new Error("unavailable")))).rejects.toThrow("unavailable");
    expect(calls.live).toBe(0);
  });
});
