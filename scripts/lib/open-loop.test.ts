import { describe, expect, it } from "vitest";
import { plannedCount, runOpenLoop, type Arrival, type Clock, type OpenLoopPlan } from "./open-loop.js";

/**
 * A discrete-event clock: time moves only from one sleeper's wake-up time to
 * the next, after everything the previous wake-up set off has run. No real
 * time passes, so the tests prove the logic, not the machine's timing.
 */
function createFakeClock(): Clock {
  let now = 0;
  const sleepers: { at: number; wake: () => void }[] = [];
  let driving = false;
  const drive = (): void => {
    if (driving) return;
    driving = true;
    setImmediate(function step() {
      sleepers.sort((a, b) => a.at - b.at);
      const first = sleepers.shift();
      if (!first) {
        driving = false;
        return;
      }
      now = Math.max(now, first.at);
      first.wake();
      setImmediate(step);
    });
  };
  return {
    now: () => now,
    sleepUntil: (at) =>
      new Promise<void>((wake) => {
        sleepers.push({ at, wake });
        drive();
      }),
  };
}

/** One server working requests one at a time in arrival order, `serviceMs` each. */
function createQueueingServer(clock: Clock, serviceMs: number) {
  let busyUntil = 0;
  const sentAt: number[] = [];
  return {
    sentAt,
    send: async (_arrival: Arrival): Promise<void> => {
      sentAt.push(clock.now());
      busyUntil = Math.max(busyUntil, clock.now()) + serviceMs;
      await clock.sleepUntil(busyUntil);
    },
  };
}

const plan = (overrides: Partial<OpenLoopPlan> = {}): OpenLoopPlan => ({ ratePerSecond: 100, count: 1000, durationMs: 100, maxInFlight: 1000, ...overrides });

describe("open-loop arrivals", () => {
  it("send every request at its intended time even while earlier ones wait unanswered", async () => {
    const clock = createFakeClock();
    // 10 ms between arrivals, 20 ms of work each: a closed loop would slow down to the server's pace.
    const server = createQueueingServer(clock, 20);
    const result = await runOpenLoop(plan(), clock, server.send);
    expect(server.sentAt).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
    expect(result).toMatchObject({ planned: 10, sent: 10, succeeded: 10, failed: 0, shed: 0, maxSendLagMs: 0, achievedRate: 100 });
  });

  it("measure latency from the intended send time, so the queue a slow server builds shows", async () => {
    const clock = createFakeClock();
    const result = await runOpenLoop(plan(), clock, createQueueingServer(clock, 20).send);
    // Request i finishes at 20(i+1) and was due at 10i: it waited 20 + 10i ms.
    expect(result.latenciesMs).toEqual([20, 30, 40, 50, 60, 70, 80, 90, 100, 110]);
  });

  it("count a stall of the sender itself in the latency of the requests it delayed, and send them all on catching up", async () => {
    const base = createFakeClock();
    let stalled = false;
    // The sender's first wake-up after 0 comes 35 ms late (a long GC pause, a busy event loop).
    const clock: Clock = {
      now: base.now,
      sleepUntil: (at) => {
        if (at > 0 && !stalled) {
          stalled = true;
          return base.sleepUntil(at + 35);
        }
        return base.sleepUntil(at);
      },
    };
    const server = createQueueingServer(base, 1);
    const result = await runOpenLoop(plan(), clock, server.send);
    // Due at 10, 20, 30 and 40: all four go out at 45, when the sender wakes.
    expect(server.sentAt.slice(0, 6)).toEqual([0, 45, 45, 45, 45, 50]);
    expect(result.sent).toBe(10);
    expect(result.maxSendLagMs).toBe(35);
    // Due at 10, sent at 45, served first of the burst: done at 46, 36 ms after it was due (not the 1 ms it took).
    expect(result.latenciesMs.at(-1)).toBe(36);
  });

  it("shed an arrival beyond the in-flight cap instead of delaying it", async () => {
    const clock = createFakeClock();
    const server = createQueueingServer(clock, 1000);
    const result = await runOpenLoop(plan({ maxInFlight: 3 }), clock, server.send);
    expect(result).toMatchObject({ planned: 10, sent: 3, shed: 7, succeeded: 3 });
    expect(server.sentAt).toEqual([0, 10, 20]);
  });

  it("count failed requests apart and leave them out of the latencies", async () => {
    const clock = createFakeClock();
    const result = await runOpenLoop(plan(), clock, async ({ index }) => {
      await clock.sleepUntil(clock.now() + 5);
      if (index % 5 === 0) throw new Error("unavailable");
    });
    expect(result).toMatchObject({ sent: 10, succeeded: 8, failed: 2 });
    expect(result.latenciesMs).toHaveLength(8);
  });

  it("stop sending when the stop signal aborts, and still wait for what was sent", async () => {
    const clock = createFakeClock();
    const stop = new AbortController();
    let settled = 0;
    const result = await runOpenLoop(
      plan(),
      clock,
      async ({ index }) => {
        if (index === 3) stop.abort();
        await clock.sleepUntil(clock.now() + 50);
        settled++;
      },
      stop.signal,
    );
    expect(result.sent).toBe(4);
    expect(settled).toBe(4);
  });

  it("are bounded by count and by duration, whichever comes first", () => {
    expect(plannedCount({ ratePerSecond: 150, count: 1_000_000, durationMs: 30_000, maxInFlight: 1 })).toBe(4500);
    expect(plannedCount({ ratePerSecond: 150, count: 100, durationMs: 30_000, maxInFlight: 1 })).toBe(100);
    expect(plannedCount({ ratePerSecond: 0.5, count: 100, durationMs: 1_000, maxInFlight: 1 })).toBe(1);
  });
});
