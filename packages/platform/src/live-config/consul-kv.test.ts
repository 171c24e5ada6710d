/**
 * These tests run the Consul KV live-config adapter against a simulated server
 * that follows Consul's documented HTTP API (testing/consul-http-api.ts),
 * because no Consul agent can be installed where they run. compose runs the
 * adapter against a real agent.
 */
import { describe, test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import assert from "node:assert/strict";
import { z } from "zod";
import { createConsulHttpApi, type ConsulHttpApi } from "@meshwork/testing";
import { createConsulLiveConfig } from "./consul-kv.js";
import type { LiveConfigSource, LiveValue } from "./ports.js";
import { createLogCapture } from "@meshwork/testing";

const KEY_PATH = "/v1/kv/meshwork/payments/decline-rate";
const CONSUL_KEY = "meshwork/payments/decline-rate";
const TEST_TIMEOUT = { timeout: 15_000 };
const rate = z.number().min(0).max(1);

function nextChange<T>(live: LiveValue<T>): Promise<{ value: T; previous: T }> {
  return new Promise((resolve) => {
    const off = live.onChange((value, previous) => {
      off();
      resolve({ value, previous });
    });
  });
}

async function setup(t: TestScope, options: { token?: string } = {}): Promise<{ api: ConsulHttpApi; config: LiveConfigSource; logs: ReturnType<typeof createLogCapture> }> {
  const api = createConsulHttpApi(options.token === undefined ? {} : { token: options.token });
  await api.start();
  const logs = createLogCapture();
  const config = createConsulLiveConfig({
    consul: { host: api.host, port: api.port, ...(options.token === undefined ? {} : { token: options.token }) },
    prefix: "meshwork/",
    log: logs.log,
    watchWait: "200ms",
    retryMaxMs: 1_000,
  });
  t.onTestFinished(async () => {
    config.close();
    await api.stop();
  });
  return { api, config, logs };
}

describe("Consul KV live config against Consul's documented HTTP API (simulated server, not a live agent)", () => {
  test("a missing key answers the fallback once ready", TEST_TIMEOUT, async (t) => {
    const { api, config } = await setup(t);
    const declineRate = config.value("payments/decline-rate", rate, 0.05);
    await config.ready();
    assert.equal(declineRate.get(), 0.05);
    assert.equal(api.requests(KEY_PATH)[0]?.status, 404);
  });

  test("a key already set is the value once ready", TEST_TIMEOUT, async (t) => {
    const { api, config } = await setup(t);
    api.putKey(CONSUL_KEY, "0.25");
    const declineRate = config.value("payments/decline-rate", rate, 0.05);
    await config.ready();
    assert.equal(declineRate.get(), 0.25);
  });

  test("a valid update reaches onChange through a blocking query", TEST_TIMEOUT, async (t) => {
    const { api, config } = await setup(t);
    const declineRate = config.value("payments/decline-rate", rate, 0.05);
    await config.ready();

    const changed = nextChange(declineRate);
    api.putKey(CONSUL_KEY, "0.3");
    assert.deepEqual(await changed, { value: 0.3, previous: 0.05 });
    assert.equal(declineRate.get(), 0.3);

    const blocking = api.requests(KEY_PATH).filter((request) => Number(request.query.index ?? "0") > 0);
    assert.ok(blocking.length >= 1, "the update came back on a blocking query");
    for (const request of blocking) assert.equal(request.query.wait, "200ms");
  });

  test("an invalid update is refused with a warning naming the key, and the old value is kept", TEST_TIMEOUT, async (t) => {
    const { api, config, logs } = await setup(t);
    api.putKey(CONSUL_KEY, "0.2");
    const declineRate = config.value("payments/decline-rate", rate, 0.05);
    await config.ready();
    let notified = 0;
    declineRate.onChange(() => (notified += 1));

    const refused = logs.next((entry) => entry.key === "payments/decline-rate" && entry.level === "warn");
    api.putKey(CONSUL_KEY, "7");
    const warning = await refused;
    assert.match(String(warning.error), /<=1|less than or equal to 1/i);
    assert.equal(declineRate.get(), 0.2);
    assert.equal(notified, 0);

    // Still watching: the next valid value goes through.
    const changed = nextChange(declineRate);
    api.putKey(CONSUL_KEY, "0.4");
    assert.deepEqual(await changed, { value: 0.4, previous: 0.2 });
  });

  test("deleting the key goes back to the fallback", TEST_TIMEOUT, async (t) => {
    const { api, config } = await setup(t);
    api.putKey(CONSUL_KEY, "0.2");
    const declineRate = config.value("payments/decline-rate", rate, 0.05);
    await config.ready();

    const changed = nextChange(declineRate);
    api.deleteKey(CONSUL_KEY);
    assert.deepEqual(await changed, { value: 0.05, previous: 0.2 });
  });

  test("text that is not JSON is taken as a string", TEST_TIMEOUT, async (t) => {
    const { api, config } = await setup(t);
    api.putKey("meshwork/payments/mode", "degraded");
    const mode = config.value("payments/mode", z.enum(["normal", "degraded"]), "normal");
    await config.ready();
    assert.equal(mode.get(), "degraded");
  });

  test("two bindings of one key share one watch and each sees the value", TEST_TIMEOUT, async (t) => {
    const { api, config } = await setup(t);
    api.putKey(CONSUL_KEY, "0.2");
    const first = config.value("payments/decline-rate", rate, 0.05);
    await config.ready();
    const second = config.value("payments/decline-rate", rate, 0.01);
    assert.equal(second.get(), 0.2);
    assert.equal(api.requests(KEY_PATH).filter((request) => request.query.index === "0").length, 1);
    assert.equal(first.get(), 0.2);
  });

  test("a server error keeps the current value, and updates resume afterwards", TEST_TIMEOUT, async (t) => {
    const { api, config, logs } = await setup(t);
    api.putKey(CONSUL_KEY, "0.2");
    const declineRate = config.value("payments/decline-rate", rate, 0.05);
    await config.ready();

    const warned = logs.next((entry) => (entry.error as { status?: number } | undefined)?.status === 500);
    await api.failNext(KEY_PATH, 2, 500);
    await warned;
    assert.equal(declineRate.get(), 0.2);

    const changed = nextChange(declineRate);
    api.putKey(CONSUL_KEY, "0.6");
    assert.deepEqual(await changed, { value: 0.6, previous: 0.2 });
  });

  test("when Consul is unreachable, ready() still resolves and values stay at their fallback", TEST_TIMEOUT, async (t) => {
    const { api, config } = await setup(t);
    await api.stop();
    const declineRate = config.value("payments/decline-rate", rate, 0.05);
    await config.ready();
    assert.equal(declineRate.get(), 0.05);
  });

  test("the ACL token is sent on the KV queries", TEST_TIMEOUT, async (t) => {
    const { api, config } = await setup(t, { token: "s3cret" });
    api.putKey(CONSUL_KEY, "0.2");
    const declineRate = config.value("payments/decline-rate", rate, 0.05);
    await config.ready();
    assert.equal(declineRate.get(), 0.2);
    assert.equal(api.requests(KEY_PATH)[0]?.status, 200);
  });
});
