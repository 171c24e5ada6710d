/**
 * These tests run the Consul adapter against a simulated server that follows
 * Consul's documented HTTP API (testing/consul-http-api.ts), because no Consul
 * agent can be installed where they run. They prove the adapter speaks that
 * API correctly; compose runs the adapter against a real agent.
 */
import { describe, test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import assert from "node:assert/strict";
import { createConsulHttpApi, type ConsulHttpApi } from "@meshwork/testing";
import { createConsulDiscovery, type ConsulDiscovery, type ConsulDiscoveryOptions } from "./consul.js";
import type { Instance, InstanceWatch, Registration } from "./ports.js";
import { createLogCapture } from "@meshwork/testing";

const HEALTH_PATH = "/v1/health/service/catalog";
const TEST_TIMEOUT = { timeout: 15_000 };

function nextChange(watch: InstanceWatch, predicate: (instances: readonly Instance[]) => boolean = () => true): Promise<readonly Instance[]> {
  return new Promise((resolve) => {
    const off = watch.onChange((instances) => {
      if (!predicate(instances)) return;
      off();
      resolve(instances);
    });
  });
}

function ids(instances: readonly Instance[]): string[] {
  return instances.map((instance) => instance.id);
}

async function setup(
  t: TestScope,
  options: { token?: string; clientToken?: string; nodeAddress?: string } = {},
): Promise<{ api: ConsulHttpApi; discovery: ConsulDiscovery; logs: ReturnType<typeof createLogCapture> }> {
  const api = createConsulHttpApi({
    ...(options.token === undefined ? {} : { token: options.token }),
    ...(options.nodeAddress === undefined ? {} : { nodeAddress: options.nodeAddress }),
  });
  await api.start();
  const logs = createLogCapture();
  const discoveryOptions: ConsulDiscoveryOptions = {
    consul: {
      host: api.host,
      port: api.port,
      ...(options.clientToken === undefined ? {} : { token: options.clientToken }),
    },
    log: logs.log,
    checkInterval: "1s",
    checkTimeout: "500ms",
    deregisterAfter: "1m",
    watchWait: "200ms",
    retryMaxMs: 1_000,
  };
  const discovery = createConsulDiscovery(discoveryOptions);
  t.onTestFinished(async () => {
    discovery.resolver.close();
    await api.stop();
  });
  return { api, discovery, logs };
}

const catalogA: Registration = { name: "catalog", id: "catalog-a", host: "127.0.0.1", port: 50052, tags: ["v1"] };
const catalogB: Registration = { name: "catalog", id: "catalog-b", host: "127.0.0.1", port: 50051 };

describe("Consul adapter against Consul's documented HTTP API (simulated server, not a live agent)", () => {
  test("register puts the instance in the agent with a gRPC health check; deregister removes it", TEST_TIMEOUT, async (t) => {
    const { api, discovery } = await setup(t);
    const handle = await discovery.registry.register(catalogA);

    const stored = api.registration("catalog-a");
    assert.ok(stored, "the agent knows the instance");
    assert.equal(stored.body.Name, "catalog");
    assert.equal(stored.body.ID, "catalog-a");
    assert.equal(stored.body.Address, "127.0.0.1");
    assert.equal(stored.body.Port, 50052);
    assert.deepEqual(stored.body.Tags, ["v1"]);
    assert.equal(stored.checks.length, 1);
    const check = stored.checks[0];
    assert.equal(check?.Type, "grpc");
    assert.equal(check?.Definition.GRPC, "127.0.0.1:50052");
    assert.equal(check?.Definition.Interval, "1s");
    assert.equal(check?.Definition.Timeout, "500ms");
    assert.equal(check?.Definition.DeregisterCriticalServiceAfter, "1m");
    // Consul starts a check critical until its first probe passes.
    assert.equal(check?.Status, "critical");

    await handle.deregister();
    assert.equal(api.registration("catalog-a"), undefined);
    await handle.deregister();
    assert.equal(api.requestCount("/v1/agent/service/deregister/catalog-a"), 1);
  });

  test("an IPv6 instance gets a bracketed gRPC check target", TEST_TIMEOUT, async (t) => {
    const { api, discovery } = await setup(t);
    await discovery.registry.register({ name: "catalog", id: "catalog-v6", host: "::1", port: 50052 });
    assert.equal(api.registration("catalog-v6")?.checks[0]?.Definition.GRPC, "[::1]:50052");
  });

  test("deregister succeeds when the agent already dropped the instance", TEST_TIMEOUT, async (t) => {
    const { api, discovery } = await setup(t);
    const handle = await discovery.registry.register(catalogA);
    const removed = await fetch(`http://${api.host}:${api.port}/v1/agent/service/deregister/catalog-a`, {
      method: "PUT",
    });
    assert.equal(removed.status, 200);
    await handle.deregister();
    const last = api.requests("/v1/agent/service/deregister/catalog-a").at(-1);
    assert.equal(last?.status, 404);
  });

  test("a watch sees a new instance once its check passes, and drops one whose check fails", TEST_TIMEOUT, async (t) => {
    const { api, discovery } = await setup(t);
    await discovery.registry.register(catalogA);
    api.setCheckStatus("catalog-a", "passing");

    const watch = discovery.resolver.watch("catalog");
    await watch.ready();
    assert.deepEqual(watch.instances(), [{ id: "catalog-a", host: "127.0.0.1", port: 50052 }]);

    const changes: string[][] = [];
    watch.onChange((instances) => changes.push(ids(instances)));

    // Registered but still critical: the passing filter hides it.
    await discovery.registry.register(catalogB);
    const bothSeen = nextChange(watch);
    api.setCheckStatus("catalog-b", "passing");
    // Sorted by address, so catalog-b (port 50051) comes first whatever Consul's order.
    assert.deepEqual(ids(await bothSeen), ["catalog-b", "catalog-a"]);

    const failingDropped = nextChange(watch);
    api.setCheckStatus("catalog-a", "critical");
    assert.deepEqual(ids(await failingDropped), ["catalog-b"]);
    assert.deepEqual(changes, [["catalog-b", "catalog-a"], ["catalog-b"]]);

    const blocking = api.requests(HEALTH_PATH).filter((request) => Number(request.query.index ?? "0") > 0);
    assert.ok(blocking.length >= 2, "the changes came back on blocking queries");
    for (const request of blocking) {
      assert.equal(request.query.wait, "200ms");
      assert.equal(request.query.passing, "true");
    }
    watch.close();
  });

  test("an instance registered without an address is reached at its node's address", TEST_TIMEOUT, async (t) => {
    const { api, discovery } = await setup(t, { nodeAddress: "10.0.0.7" });
    const response = await fetch(`http://${api.host}:${api.port}/v1/agent/service/register`, {
      method: "PUT",
      body: JSON.stringify({ Name: "catalog", ID: "catalog-node", Port: 50052, Address: "" }),
    });
    assert.equal(response.status, 200);
    const watch = discovery.resolver.watch("catalog");
    await watch.ready();
    assert.deepEqual(watch.instances(), [{ id: "catalog-node", host: "10.0.0.7", port: 50052 }]);
  });

  test("watches on one service share one blocking query, and closing one leaves the other working", TEST_TIMEOUT, async (t) => {
    const { api, discovery } = await setup(t);
    const first = discovery.resolver.watch("catalog");
    const second = discovery.resolver.watch("catalog");
    await Promise.all([first.ready(), second.ready()]);
    const initial = api.requests(HEALTH_PATH).filter((request) => request.query.index === "0");
    assert.equal(initial.length, 1, "one initial query for two watches");

    first.close();
    await discovery.registry.register(catalogA);
    const seen = nextChange(second);
    api.setCheckStatus("catalog-a", "passing");
    assert.deepEqual(ids(await seen), ["catalog-a"]);
    assert.deepEqual(first.instances(), second.instances());
  });

  test("answers that do not change the list do not notify", TEST_TIMEOUT, async (t) => {
    const { api, discovery } = await setup(t);
    await discovery.registry.register(catalogA);
    api.setCheckStatus("catalog-a", "passing");
    const watch = discovery.resolver.watch("catalog");
    await watch.ready();
    let notified = 0;
    watch.onChange(() => (notified += 1));

    // A critical instance of the same service moves the index, not the passing list.
    await discovery.registry.register(catalogB);
    const moved = api.index();
    // The watch asking again with the new index proves it took in that answer.
    await api.nextRequest(HEALTH_PATH, (request) => Number(request.query.index) >= moved);
    assert.equal(notified, 0);
    assert.deepEqual(ids(watch.instances()), ["catalog-a"]);
  });

  test("errors from Consul (500) keep the last known list, and the watch recovers", TEST_TIMEOUT, async (t) => {
    const { api, discovery, logs } = await setup(t);
    await discovery.registry.register(catalogA);
    api.setCheckStatus("catalog-a", "passing");
    const watch = discovery.resolver.watch("catalog");
    await watch.ready();

    const warned = logs.next((entry) => (entry.error as { status?: number } | undefined)?.status === 500);
    await api.failNext(HEALTH_PATH, 2, 500);
    await warned;
    assert.deepEqual(ids(watch.instances()), ["catalog-a"]);

    await discovery.registry.register(catalogB);
    const recovered = nextChange(watch);
    api.setCheckStatus("catalog-b", "passing");
    assert.deepEqual(ids(await recovered), ["catalog-b", "catalog-a"]);
  });

  test("a refused connection keeps the last known list, and the watch recovers when Consul is back", TEST_TIMEOUT, async (t) => {
    const { api, discovery, logs } = await setup(t);
    await discovery.registry.register(catalogA);
    api.setCheckStatus("catalog-a", "passing");
    const watch = discovery.resolver.watch("catalog");
    await watch.ready();

    const refused = logs.next((entry) => (entry.error as { code?: string } | undefined)?.code === "ECONNREFUSED");
    await api.stop();
    await refused;
    assert.deepEqual(ids(watch.instances()), ["catalog-a"]);

    await api.start();
    await discovery.registry.register(catalogB);
    const recovered = nextChange(watch);
    api.setCheckStatus("catalog-b", "passing");
    assert.deepEqual(ids(await recovered), ["catalog-b", "catalog-a"]);
  });

  test("a 400 that makes the consul package give its watch up does not end discovery", TEST_TIMEOUT, async (t) => {
    const { api, discovery, logs } = await setup(t);
    await discovery.registry.register(catalogA);
    api.setCheckStatus("catalog-a", "passing");
    const watch = discovery.resolver.watch("catalog");
    await watch.ready();

    const restarting = logs.next((entry) => entry.msg?.includes("starting a new one") === true);
    await api.failNext(HEALTH_PATH, 1, 400);
    await restarting;
    assert.deepEqual(ids(watch.instances()), ["catalog-a"]);

    await discovery.registry.register(catalogB);
    const recovered = nextChange(watch);
    api.setCheckStatus("catalog-b", "passing");
    assert.deepEqual(ids(await recovered), ["catalog-b", "catalog-a"]);
  });

  test("the ACL token is sent on every request, and a missing one is refused", TEST_TIMEOUT, async (t) => {
    const withToken = await setup(t, { token: "s3cret", clientToken: "s3cret" });
    await withToken.discovery.registry.register(catalogA);
    withToken.api.setCheckStatus("catalog-a", "passing");
    const watch = withToken.discovery.resolver.watch("catalog");
    await watch.ready();
    assert.deepEqual(ids(watch.instances()), ["catalog-a"]);

    const withoutToken = createConsulDiscovery({
      consul: { host: withToken.api.host, port: withToken.api.port },
      log: withToken.logs.log,
    });
    await assert.rejects(withoutToken.registry.register(catalogB), /permission denied/i);
    withoutToken.resolver.close();
  });

  test("closing a watch before Consul ever answered rejects ready()", TEST_TIMEOUT, async (t) => {
    const { api, discovery } = await setup(t);
    await api.stop();
    const watch = discovery.resolver.watch("catalog");
    const ready = watch.ready();
    watch.close();
    await assert.rejects(ready, /closed before Consul answered/);
    assert.deepEqual(watch.instances(), []);
  });
});
