import { Client, credentials } from "@grpc/grpc-js";
import { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { afterEach, describe, expect, it } from "vitest";
import { getProductRequest } from "./bytes-server.js";
import { createChildGroup } from "./child-group.js";
import { forkServer, usageBetween } from "./server-process.js";
import { callOnce } from "./server-rounds.js";

const children = createChildGroup();
afterEach(() => children.killAll());

describe("bench server child", () => {
  it("runs a full garbage collection when asked, and its marks count the GC pauses and the kernel's part of the CPU time", async () => {
    const server = forkServer(children, "bare");
    await server.start(Buffer.from([8, 1]));
    const before = await server.mark();
    expect(Number.isFinite(before.gcPauseUs)).toBe(true);

    // Each collection is counted: two in a row, two increases. (Wall time of the
    // pauses, so no comparison with CPU time: a descheduled pause counts whole.)
    let last = before;
    for (let collection = 1; collection <= 2; collection++) {
      expect(await server.collect()).toBe(true);
      // GC entries reach the child's observer after the collection, not within it: the next mark may miss it.
      let after = await server.mark();
      for (let tries = 0; tries < 50 && after.gcPauseUs === last.gcPauseUs; tries++) after = await server.mark();
      expect(usageBetween(last, after).gcPauseUs).toBeGreaterThan(0);
      last = after;
    }
    // The kernel's share is a part of the CPU time, never more.
    const usage = usageBetween(before, last);
    expect(usage.systemUs).toBeGreaterThanOrEqual(0);
    expect(usage.systemUs).toBeLessThanOrEqual(usage.cpuUs);
    expect(usage.cpuUs - usage.systemUs).toBeGreaterThan(0);
    await server.stop();
  });

  it("answers collect with false once the child is gone, instead of waiting", async () => {
    const server = forkServer(children, "bare");
    await server.start(Buffer.from([8, 1]));
    await server.stop();
    expect(await server.collect()).toBe(false);
  });

  it("the observed catalog exports its spans over OTLP/HTTP to the sink, which counts the export requests", async () => {
    const sink = forkServer(children, "otlp-sink");
    const observed = forkServer(children, "observed");
    const otlpEndpoint = `http://127.0.0.1:${await sink.start()}`;
    const client = new Client(`127.0.0.1:${await observed.start(undefined, { otlpEndpoint })}`, credentials.createInsecure(), {});
    try {
      const response = await callOnce(client, `/${CatalogService.typeName}/GetProduct`, getProductRequest().request);
      expect(response.length).toBeGreaterThan(0);
    } finally {
      client.close();
    }
    expect((await sink.mark()).served).toBe(0);
    // Shutting down flushes the batch the call's span is in.
    await observed.stop();
    expect((await sink.mark()).served).toBe(1);
    await sink.stop();
  });

  it("refuses to start an observed server without a sink to export to, saying so", async () => {
    const observed = forkServer(children, "sampled");
    await expect(observed.start()).rejects.toThrow(/the sampled server needs the OTLP sink's address/);
  });
});
