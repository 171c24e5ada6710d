import { afterEach, describe, expect, it } from "vitest";
import { createChildGroup } from "./child-group.js";
import { forkServer, usageBetween } from "./server-process.js";

const children = createChildGroup();
afterEach(() => children.killAll());

describe("bench server child", () => {
  it("runs a full garbage collection when asked, and its marks count the GC pauses", async () => {
    const server = forkServer(children, "bare");
    await server.start(Buffer.from([8, 1]));
    const before = await server.mark();
    expect(Number.isFinite(before.gcPauseUs)).toBe(true);

    expect(await server.collect()).toBe(true);
    // GC entries reach the child's observer after the collection, not within it: the next mark may miss it.
    let after = await server.mark();
    for (let tries = 0; tries < 50 && after.gcPauseUs === before.gcPauseUs; tries++) after = await server.mark();

    const usage = usageBetween(before, after);
    expect(usage.gcPauseUs).toBeGreaterThan(0);
    expect(usage.gcPauseUs).toBeLessThanOrEqual(usage.cpuUs);
    await server.stop();
  });

  it("answers collect with false once the child is gone, instead of waiting", async () => {
    const server = forkServer(children, "bare");
    await server.start(Buffer.from([8, 1]));
    await server.stop();
    expect(await server.collect()).toBe(false);
  });
});
