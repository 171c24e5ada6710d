/**
 * The client's resilience over real gRPC: grpc-js servers on loopback, the
 * platform client, cockatiel's breaker and bulkhead, our budget and ejection.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import { setTimeout as delay } from "node:timers/promises";
import { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { createClient, type ClientConfig } from "../client.js";
import { createStaticDiscovery } from "../discovery/static.js";
import { Code, isRpcError, RpcError } from "../rpc-errors.js";
import { createEnvLiveConfig } from "../live-config/env.js";
import { createSilentLogger } from "../logger.js";
import { createLogCapture } from "@meshwork/testing";
import { createGrpcHost } from "../server.js";
import type { ServiceHandlers } from "../service-types.js";
import { FastFailError } from "./policy.js";
import { bindResilienceSettings, DEFAULT_RESILIENCE, mergeResilience, resilienceSchema, type ResilienceOverrides } from "./settings.js";

type CatalogHandlers = ServiceHandlers<typeof CatalogService>;
const product = (id: string) => ({ id, name: `Product ${id}`, price: { currencyCode: "EUR", amountMinor: 100n } });

/** A catalog server on a free port whose getProduct runs `behaviour`; counts the calls that reach it. */
async function serve(t: TestScope, behaviour: CatalogHandlers["getProduct"]) {
  const host = createGrpcHost({ name: "catalog", log: createSilentLogger() });
  const served = { calls: 0 };
  host.add(CatalogService, {
    listProducts: async () => {
      served.calls += 1;
      throw new RpcError(Code.UNAVAILABLE, "list is down");
    },
    getProduct: async (request, context) => {
      served.calls += 1;
      return behaviour(request, context);
    },
  });
  const port = await host.listen({ host: "127.0.0.1", port: 0 });
  host.setServing(true);
  let stopped = false;
  const stop = async () => {
    if (!stopped) {
      stopped = true;
      await host.shutdown(50);
    }
  };
  t.onTestFinished(stop);
  return { address: `127.0.0.1:${port}`, served, stop };
}

function client(t: TestScope, target: ClientConfig["target"], overrides: ResilienceOverrides, extra: Partial<ClientConfig> = {}) {
  const created = createClient(CatalogService, {
    target,
    name: "catalog",
    resilience: mergeResilience(DEFAULT_RESILIENCE, overrides),
    idempotentMethods: ["getProduct"],
    ...extra,
  });
  t.onTestFinished(created.close);
  return created;
}

const NO_BREAKER = { enabled: false };
const fast = { initialBackoffMs: 1, maxBackoffMs: 5 };

describe("retries", () => {
  test("an idempotent call that fails twice with UNAVAILABLE succeeds on the third attempt", async (t) => {
    let failures = 2;
    const server = await serve(t, async (request) => {
      if (failures-- > 0) throw new RpcError(Code.UNAVAILABLE, "warming up");
      return { product: product(request.productId) };
    });
    const { client: catalog, downstream } = client(t, server.address, { retry: { maxAttempts: 3, ...fast } });
    const response = await catalog.getProduct({ productId: "A1" });
    assert.equal(response.product?.id, "A1");
    assert.equal(server.served.calls, 3);
    assert.equal(downstream.counters.retries, 2);
  });

  test("a method not declared idempotent is tried once", async (t) => {
    const server = await serve(t, async () => ({}));
    const { client: catalog } = client(t, server.address, { retry: { maxAttempts: 5, ...fast } });
    const error = await catalog.listProducts({}).catch((caught: unknown) => caught);
    assert.ok(isRpcError(error, Code.UNAVAILABLE));
    assert.equal(server.served.calls, 1);
  });

  test("a status that is not retryable is not retried", async (t) => {
    const server = await serve(t, async () => {
      throw new RpcError(Code.NOT_FOUND, "no such product");
    });
    const { client: catalog } = client(t, server.address, { retry: { maxAttempts: 5, ...fast } });
    const error = await catalog.getProduct({ productId: "X" }).catch((caught: unknown) => caught);
    assert.ok(isRpcError(error, Code.NOT_FOUND));
    assert.equal(server.served.calls, 1);
  });

  test("in an outage the budget stops retries: 100 calls reach the server about 100 + maxTokens/2 times, not 300", async (t) => {
    const server = await serve(t, async () => {
      throw new RpcError(Code.UNAVAILABLE, "down");
    });
    const { client: catalog, downstream } = client(t, server.address, {
      retry: { maxAttempts: 3, ...fast },
      budget: { maxTokens: 10, tokenRatio: 0.1 },
      breaker: NO_BREAKER,
    });
    for (let i = 0; i < 100; i += 1) {
      const error = await catalog.getProduct({ productId: "A1" }).catch((caught: unknown) => caught);
      assert.ok(isRpcError(error, Code.UNAVAILABLE));
    }
    // Retries stop once no more than half the tokens are left: 10 tokens, one per failure.
    assert.ok(server.served.calls <= 100 + 5, `server saw ${server.served.calls} calls`);
    assert.ok(server.served.calls >= 100 + 3, "retries happened while the budget allowed");
    assert.ok(downstream.counters.retriesRefusedByBudget > 90);
  });
});

describe("the circuit breaker", () => {
  test("turned off, it never refuses: every call of a long outage reaches the downstream", async (t) => {
    const server = await serve(t, async () => {
      throw new RpcError(Code.UNAVAILABLE, "down");
    });
    const { client: catalog, downstream } = client(t, server.address, { retry: { maxAttempts: 1 }, breaker: NO_BREAKER });
    const states: string[] = [];
    downstream.onBreakerChange((state) => states.push(state));
    for (let i = 0; i < 50; i += 1) {
      const error = await catalog.getProduct({ productId: "A1" }).catch((caught: unknown) => caught);
      assert.ok(isRpcError(error, Code.UNAVAILABLE) && !(error instanceof FastFailError), String(error));
    }
    assert.equal(server.served.calls, 50);
    assert.equal(downstream.breakerState(), "closed");
    assert.deepEqual(states, []);
    assert.equal(downstream.counters.rejectedByBreaker, 0);
  });

  test("opens after the configured failures in a row, then fails fast without calling", async (t) => {
    const server = await serve(t, async () => {
      throw new RpcError(Code.UNAVAILABLE, "down");
    });
    const { client: catalog, downstream } = client(t, server.address, {
      retry: { maxAttempts: 1 },
      breaker: { consecutiveFailures: 4, window: 100, minimumCalls: 100, halfOpenAfterMs: 60_000 },
    });
    const states: string[] = [];
    downstream.onBreakerChange((state) => states.push(state));
    for (let i = 0; i < 4; i += 1) await catalog.getProduct({ productId: "A1" }).catch(() => undefined);
    assert.equal(downstream.breakerState(), "open");
    assert.deepEqual(states, ["open"]);
    const started = performance.now();
    const error = await catalog.getProduct({ productId: "A1" }).catch((caught: unknown) => caught);
    assert.ok(isRpcError(error, Code.UNAVAILABLE));
    assert.match(error.message, /catalog is failing: circuit open/);
    assert.equal(server.served.calls, 4, "the fifth call never reached the server");
    assert.equal(downstream.counters.rejectedByBreaker, 1);
    assert.ok(performance.now() - started < 50, "failing fast takes no network round trip");
  });

  test("opens when the share of failures in the window passes the ratio, even without a run of failures", async (t) => {
    let n = 0;
    const server = await serve(t, async (request) => {
      n += 1;
      if (n % 3 !== 0) throw new RpcError(Code.DEADLINE_EXCEEDED, "slow");
      return { product: product(request.productId) };
    });
    const { client: catalog, downstream } = client(t, server.address, {
      retry: { maxAttempts: 1 },
      breaker: { consecutiveFailures: 50, failureRatio: 0.5, window: 12, minimumCalls: 6, halfOpenAfterMs: 60_000 },
    });
    // Failures never come more than two in a row; the seventh call is the first failure with six calls seen.
    for (let i = 0; i < 7; i += 1) await catalog.getProduct({ productId: "A1" }).catch(() => undefined);
    assert.equal(downstream.breakerState(), "open");
    assert.equal(server.served.calls, 7);
  });

  test("business errors (NOT_FOUND, INVALID_ARGUMENT) never open it", async (t) => {
    const server = await serve(t, async () => {
      throw new RpcError(Code.NOT_FOUND, "no such product");
    });
    const { client: catalog, downstream } = client(t, server.address, { retry: { maxAttempts: 1 }, breaker: { consecutiveFailures: 2, window: 4, minimumCalls: 2 } });
    for (let i = 0; i < 10; i += 1) await catalog.getProduct({ productId: "A1" }).catch(() => undefined);
    assert.equal(downstream.breakerState(), "closed");
    assert.equal(server.served.calls, 10);
  });

  test("half-opens after the cool-down and closes again when the trial call succeeds", async (t) => {
    let healthy = false;
    const server = await serve(t, async (request) => {
      if (!healthy) throw new RpcError(Code.UNAVAILABLE, "down");
      return { product: product(request.productId) };
    });
    const { client: catalog, downstream } = client(t, server.address, {
      retry: { maxAttempts: 1 },
      breaker: { consecutiveFailures: 2, window: 100, minimumCalls: 100, halfOpenAfterMs: 200 },
    });
    const states: string[] = [];
    downstream.onBreakerChange((state) => states.push(state));
    await catalog.getProduct({ productId: "A1" }).catch(() => undefined);
    await catalog.getProduct({ productId: "A1" }).catch(() => undefined);
    assert.equal(downstream.breakerState(), "open");
    healthy = true;
    const refused = await catalog.getProduct({ productId: "A1" }).catch((caught: unknown) => caught);
    assert.ok(isRpcError(refused, Code.UNAVAILABLE), "still open before the cool-down");
    await delay(250);
    const response = await catalog.getProduct({ productId: "A1" });
    assert.equal(response.product?.id, "A1");
    assert.equal(downstream.breakerState(), "closed");
    assert.deepEqual(states, ["open", "half-open", "closed"]);
  });
});

/** A client whose bulkhead (one slot, four queued) is taken by a call the server holds until `release()`. */
async function oneSlotTaken(t: TestScope) {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const server = await serve(t, async (request) => {
    await gate;
    return { product: product(request.productId) };
  });
  const { client: catalog } = client(t, server.address, { retry: { maxAttempts: 1 }, bulkhead: { maxConcurrent: 1, maxQueue: 4 } });
  const busy = catalog.getProduct({ productId: "slow" }, { timeoutMs: 10_000 });
  return { catalog, busy, release };
}

describe("the bulkhead", () => {
  test("runs at most maxConcurrent calls, queues maxQueue more and refuses the rest at once", async (t) => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let running = 0;
    let peak = 0;
    let bothArrived!: () => void;
    const arrived = new Promise<void>((resolve) => (bothArrived = resolve));
    const server = await serve(t, async (request) => {
      running += 1;
      peak = Math.max(peak, running);
      if (running === 2) bothArrived();
      await gate;
      running -= 1;
      return { product: product(request.productId) };
    });
    const { client: catalog, downstream } = client(t, server.address, { retry: { maxAttempts: 1 }, bulkhead: { maxConcurrent: 2, maxQueue: 1 } });
    const admitted = [0, 1, 2].map((i) => catalog.getProduct({ productId: `P${i}` }, { timeoutMs: 5000 }));
    const started = performance.now();
    const refused = await catalog.getProduct({ productId: "P3" }).catch((caught: unknown) => caught);
    assert.ok(isRpcError(refused, Code.UNAVAILABLE));
    assert.match(refused.message, /catalog is overloaded/);
    assert.ok(performance.now() - started < 50, "refused without waiting");
    assert.equal(downstream.counters.rejectedByBulkhead, 1);
    await arrived;
    release();
    const answers = await Promise.all(admitted);
    assert.deepEqual(
      answers.map((answer) => answer.product?.id),
      ["P0", "P1", "P2"],
    );
    assert.equal(peak, 2, "never more than two calls at the server");
  });

  test("a queued call whose deadline passes gives up then, not when a slot frees", async (t) => {
    const { catalog, busy, release } = await oneSlotTaken(t);
    const started = performance.now();
    const queued = await catalog.getProduct({ productId: "queued" }, { timeoutMs: 100 }).catch((caught: unknown) => caught);
    const waited = performance.now() - started;
    assert.ok(isRpcError(queued, Code.DEADLINE_EXCEEDED), `got ${String(queued)}`);
    assert.ok(waited >= 90 && waited < 1000, `gave up after ${waited.toFixed(0)} ms`);
    release();
    assert.equal((await busy).product?.id, "slow");
  });

  test("a call already cancelled when it meets a full bulkhead is refused, and leaves no rejection unhandled (one crashed npm start under load)", async (t) => {
    const { catalog, busy, release } = await oneSlotTaken(t);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on("unhandledRejection", onUnhandled);
    t.onTestFinished(() => {
      process.off("unhandledRejection", onUnhandled);
    });
    const cancelled = await catalog.getProduct({ productId: "gone" }, { signal: AbortSignal.abort() }).catch((caught: unknown) => caught);
    assert.ok(isRpcError(cancelled), `got ${String(cancelled)}`);
    // Node reports an unhandled rejection once the microtasks have run: a macrotask later it would have.
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(unhandled, []);
    release();
    assert.equal((await busy).product?.id, "slow");
  });
});

describe("load balancing with ejection", () => {
  test("an instance that stops answering is ejected, and idempotent calls retry on the other: no call fails", async (t) => {
    const good = await serve(t, async (request) => ({ product: product(request.productId) }));
    const doomed = await serve(t, async (request) => ({ product: product(request.productId) }));
    const discovery = createStaticDiscovery({ catalog: [good.address, doomed.address] });
    const { client: catalog, downstream } = client(t, discovery.resolver.watch("catalog"), {
      retry: { maxAttempts: 3, ...fast },
      breaker: NO_BREAKER,
      ejection: { consecutiveFailures: 2, baseEjectionMs: 60_000, maxEjectionMs: 60_000 },
    });
    for (let i = 0; i < 10; i += 1) await catalog.getProduct({ productId: `before-${i}` });
    assert.ok(doomed.served.calls >= 4 && good.served.calls >= 4, "both instances served before");
    await doomed.stop();
    for (let i = 0; i < 40; i += 1) assert.equal((await catalog.getProduct({ productId: `after-${i}` })).product?.id, `after-${i}`);
    assert.ok(downstream.instance(doomed.address).ejectedUntil > Date.now(), "the stopped instance is ejected");
    assert.equal(downstream.instance(good.address).ejectedUntil, 0);
    assert.ok(downstream.instance(good.address).latencyP50Ms > 0, "latency is recorded per instance");
    assert.ok(downstream.counters.retries <= 3, `retries stay few once ejected (${downstream.counters.retries})`);
  });

  test("a retry goes to an instance that has not failed this call: with one of two instances failing, concurrent calls all succeed (a CI chaos run failed one)", async (t) => {
    const good = await serve(t, async (request) => ({ product: product(request.productId) }));
    const bad = await serve(t, async () => {
      throw new RpcError(Code.UNAVAILABLE, "down");
    });
    const discovery = createStaticDiscovery({ catalog: [good.address, bad.address] });
    // Never ejected and a budget that never runs dry: only the choice of instance decides a retry's fate.
    const { client: catalog, downstream } = client(t, discovery.resolver.watch("catalog"), {
      retry: { maxAttempts: 2, ...fast },
      budget: { maxTokens: 1000, tokenRatio: 1 },
      breaker: NO_BREAKER,
      ejection: { consecutiveFailures: 1000 },
    });
    const failures: string[] = [];
    await Promise.all(
      Array.from({ length: 16 }, async (_, loop) => {
        for (let i = 0; i < 25; i += 1) await catalog.getProduct({ productId: `${loop}-${i}` }).catch((error: Error) => failures.push(error.message));
      }),
    );
    assert.deepEqual(failures, []);
    assert.ok(
      bad.served.calls > 0 && downstream.counters.retries === bad.served.calls,
      `every failed attempt was retried once (${downstream.counters.retries} retries, ${bad.served.calls} failed attempts)`,
    );
  });

  test("when every instance is ejected, they are all tried again rather than none", async (t) => {
    const server = await serve(t, async (request) => ({ product: product(request.productId) }));
    let failing = true;
    const flaky = await serve(t, async (request) => {
      if (failing) throw new RpcError(Code.UNAVAILABLE, "down");
      return { product: product(request.productId) };
    });
    await server.stop();
    const discovery = createStaticDiscovery({ catalog: [flaky.address] });
    const { client: catalog, downstream } = client(t, discovery.resolver.watch("catalog"), {
      retry: { maxAttempts: 1 },
      breaker: NO_BREAKER,
      ejection: { consecutiveFailures: 1, baseEjectionMs: 60_000, maxEjectionMs: 60_000 },
    });
    await catalog.getProduct({ productId: "A" }).catch(() => undefined);
    assert.ok(downstream.instance(flaky.address).ejectedUntil > 0);
    failing = false;
    assert.equal((await catalog.getProduct({ productId: "B" })).product?.id, "B");
  });
});

describe("settings", () => {
  test("an invalid setting is refused with its path named", () => {
    const bad = mergeResilience(DEFAULT_RESILIENCE, { breaker: { failureRatio: 1.5 }, bulkhead: { maxConcurrent: 0 } });
    const result = resilienceSchema.safeParse(bad);
    assert.equal(result.success, false);
    const paths = result.error!.issues.map((issue) => issue.path.join("."));
    assert.ok(paths.includes("breaker.failureRatio"), paths.join(", "));
    assert.ok(paths.includes("bulkhead.maxConcurrent"), paths.join(", "));
  });

  test("declaring a method idempotent that the service lacks fails at construction", () => {
    assert.throws(() => createClient(CatalogService, { target: "127.0.0.1:1", idempotentMethods: ["getProdcut"] }), /CatalogService has no unary method "getProdcut"/);
  });

  test("live config changes a downstream's settings on a running client; an invalid update is refused and the last good one kept", async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), "meshwork-resilience-"));
    t.onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, "live.json");
    await writeFile(file, JSON.stringify({ "orders/resilience/catalog": { retry: { maxAttempts: 1 } } }));
    const logs = createLogCapture({ level: "info" });
    const live = createEnvLiveConfig({ env: {}, file, log: logs.log, debounceMs: 10 });
    t.onTestFinished(() => live.close());
    const settings = bindResilienceSettings(live, "orders", "catalog");
    await live.ready();
    assert.equal(settings.get().retry.maxAttempts, 1);

    let failures = Number.POSITIVE_INFINITY;
    const server = await serve(t, async (request) => {
      if (failures-- > 0) throw new RpcError(Code.UNAVAILABLE, "down");
      return { product: product(request.productId) };
    });
    const { client: catalog } = client(t, server.address, {}, { resilience: settings });
    await catalog.getProduct({ productId: "A" }).catch(() => undefined);
    assert.equal(server.served.calls, 1, "one attempt while maxAttempts is 1");

    const changed = new Promise<void>((resolve) => settings.onChange(() => resolve()));
    await writeFile(file, JSON.stringify({ "orders/resilience/catalog": { retry: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 2 } } }));
    await changed;
    failures = 2;
    assert.equal((await catalog.getProduct({ productId: "B" })).product?.id, "B");
    assert.equal(server.served.calls, 4, "the new setting allowed two retries");

    const refusal = () => logs.next((entry) => entry.level === "warn");
    let next = refusal();
    await writeFile(file, JSON.stringify({ "orders/resilience/catalog": { breaker: { minimumCalls: 500, window: 20 } } }));
    assert.match(JSON.stringify(await next), /breaker\.minimumCalls: must not exceed breaker\.window/);
    next = refusal();
    await writeFile(file, JSON.stringify({ "orders/resilience/catalog": { retry: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 2 }, bulkhead: { maxConcurrent: "many" } } }));
    assert.match(JSON.stringify(await next), /maxConcurrent/);
    assert.equal(settings.get().retry.maxAttempts, 3, "the refused updates left the last good value");
    assert.equal(settings.get().bulkhead.maxConcurrent, DEFAULT_RESILIENCE.bulkhead.maxConcurrent);
  });
});
