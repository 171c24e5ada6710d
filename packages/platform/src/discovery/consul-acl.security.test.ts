/**
 * The Consul adapters (discovery and live config) with Consul's ACLs on and
 * default deny. They run against the simulated HTTP API
 * (@meshwork/testing's consul-http-api.ts), which enforces tokens and
 * policies as Consul's documentation describes them: NO Consul agent ran
 * here (none can be installed on these machines). The per-service policies
 * of compose are tested in deploy/test/consul-acl.security.test.ts.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "vitest";
import { z } from "zod";
import { createConsulHttpApi, createLogCapture, grantConsulToken, type ConsulHttpApi, type TestScope } from "@meshwork/testing";
import { loadConfig, serviceSettings } from "../config.js";
import { createConsulLiveConfig } from "../live-config/consul-kv.js";
import { createConsulDiscovery } from "./consul.js";
import type { Instance, InstanceWatch } from "./ports.js";

const MANAGEMENT = "5bd2c4a4-1f43-4c29-9a51-7d2f3a0f9c11";
const TEST_TIMEOUT = { timeout: 15_000 };

async function startConsul(t: TestScope): Promise<ConsulHttpApi> {
  const api = createConsulHttpApi({ acl: { defaultPolicy: "deny", initialManagementToken: MANAGEMENT } });
  await api.start();
  t.onTestFinished(() => api.stop());
  return api;
}

function discoveryFor(t: TestScope, api: ConsulHttpApi, token: string | undefined) {
  const logs = createLogCapture();
  const discovery = createConsulDiscovery({
    consul: { host: api.host, port: api.port, ...(token === undefined ? {} : { token }) },
    log: logs.log,
    watchWait: "200ms",
    retryMaxMs: 500,
  });
  t.onTestFinished(() => discovery.resolver.close());
  return { discovery, logs };
}

function nextChange(watch: InstanceWatch, predicate: (instances: readonly Instance[]) => boolean): Promise<readonly Instance[]> {
  return new Promise((resolve) => {
    const off = watch.onChange((instances) => {
      if (!predicate(instances)) return;
      off();
      resolve(instances);
    });
  });
}

const IDENTITY_RULES = 'service "identity" { policy = "write" }';
const ORDERS_RULES = 'service "identity" { policy = "read" }\nnode_prefix "" { policy = "read" }';

describe("Consul discovery with ACLs, default deny (simulated Consul HTTP API, not a live agent)", () => {
  test('a token with service "identity" write registers identity, but cannot register catalog or take over catalog\'s instance', TEST_TIMEOUT, async (t) => {
    const api = await startConsul(t);
    const identityToken = await grantConsulToken({ api, managementToken: MANAGEMENT, name: "identity", rules: IDENTITY_RULES });
    const catalogToken = await grantConsulToken({ api, managementToken: MANAGEMENT, name: "catalog", rules: 'service "catalog" { policy = "write" }' });
    const identity = discoveryFor(t, api, identityToken).discovery;

    const handle = await identity.registry.register({ name: "identity", id: "identity-1", host: "127.0.0.1", port: 50051 });
    assert.ok(api.registration("identity-1"));

    await assert.rejects(identity.registry.register({ name: "catalog", id: "catalog-fake", host: "10.9.9.9", port: 50052 }), (error: Error) => {
      assert.equal(error.name, "ConsulAclError");
      assert.match(error.message, /cannot register "catalog" instance catalog-fake/);
      assert.match(error.message, /lacks permission 'service:write' on "catalog"/);
      assert.match(error.message, /needs service "catalog" \{ policy = "write" \}/);
      assert.ok(!error.message.includes(identityToken), "the secret is never in the message");
      return true;
    });
    assert.equal(api.registration("catalog-fake"), undefined);

    // Registering under catalog's instance ID would replace catalog's entry: refused too.
    await discoveryFor(t, api, catalogToken).discovery.registry.register({ name: "catalog", id: "catalog-1", host: "127.0.0.1", port: 50052 });
    await assert.rejects(identity.registry.register({ name: "identity", id: "catalog-1", host: "10.9.9.9", port: 50051 }), /lacks permission 'service:write' on "catalog"/);
    assert.equal(api.registration("catalog-1")?.body.Name, "catalog");

    await handle.deregister();
    assert.equal(api.registration("identity-1"), undefined);
  });

  test("without a token, or with one Consul does not know, registration fails naming the problem", TEST_TIMEOUT, async (t) => {
    const api = await startConsul(t);
    const registration = { name: "identity", id: "identity-1", host: "127.0.0.1", port: 50051 };
    await assert.rejects(discoveryFor(t, api, undefined).discovery.registry.register(registration), /anonymous request .*no ACL token is configured; set CONSUL_HTTP_TOKEN or CONSUL_HTTP_TOKEN_FILE/);
    await assert.rejects(discoveryFor(t, api, "0e6f0c3e-56b6-4a0f-9b1e-d1a8c5f0b0aa").discovery.registry.register(registration), /does not know this service's ACL token \(ACL not found\)/);
    assert.equal(api.registration("identity-1"), undefined);
  });

  test("only instances whose checks pass are used: a critical or warning instance is never handed out", TEST_TIMEOUT, async (t) => {
    const api = await startConsul(t);
    const identityToken = await grantConsulToken({ api, managementToken: MANAGEMENT, name: "identity", rules: IDENTITY_RULES });
    const ordersToken = await grantConsulToken({ api, managementToken: MANAGEMENT, name: "orders", rules: ORDERS_RULES });
    const identity = discoveryFor(t, api, identityToken).discovery;
    for (const [id, port] of [
      ["identity-ok", 50051],
      ["identity-critical", 50061],
      ["identity-warning", 50071],
    ] as const) {
      await identity.registry.register({ name: "identity", id, host: "127.0.0.1", port });
    }
    api.setCheckStatus("identity-ok", "passing");
    api.setCheckStatus("identity-warning", "warning");
    // identity-critical keeps the status every new check starts with: critical.

    const watch = discoveryFor(t, api, ordersToken).discovery.resolver.watch("identity");
    await watch.ready();
    assert.deepEqual(
      watch.instances().map((instance) => instance.id),
      ["identity-ok"],
    );

    // When the healthy one fails too, nothing is left to call.
    const emptied = nextChange(watch, (instances) => instances.length === 0);
    api.setCheckStatus("identity-ok", "critical");
    assert.deepEqual(await emptied, []);
  });

  test("a token that may not read a service sees none of it, and the adapter logs that ACLs hid it", TEST_TIMEOUT, async (t) => {
    const api = await startConsul(t);
    const catalogToken = await grantConsulToken({ api, managementToken: MANAGEMENT, name: "catalog", rules: 'service "catalog" { policy = "write" }' });
    const ordersToken = await grantConsulToken({ api, managementToken: MANAGEMENT, name: "orders", rules: ORDERS_RULES });
    await discoveryFor(t, api, catalogToken).discovery.registry.register({ name: "catalog", id: "catalog-1", host: "127.0.0.1", port: 50052 });
    api.setCheckStatus("catalog-1", "passing");

    const { discovery, logs } = discoveryFor(t, api, ordersToken);
    const hidden = logs.next((entry) => entry.level === "error" && String(entry.msg).includes("X-Consul-Results-Filtered-By-ACLs"));
    const watch = discovery.resolver.watch("catalog");
    await watch.ready();
    assert.deepEqual(watch.instances(), []);
    const entry = await hidden;
    assert.match(String(entry.msg), /needs service "catalog" \{ policy = "read" \}/);
    // Once, not once per blocking query.
    const moved = api.index();
    await api.nextRequest("/v1/health/service/catalog", (request) => Number(request.query.index) >= moved);
    assert.equal(logs.entries.filter((line) => String(line.msg).includes("X-Consul-Results-Filtered-By-ACLs")).length, 1);
  });
});

describe("Consul live config with ACLs, default deny (simulated Consul HTTP API, not a live agent)", () => {
  test("a token reads its own prefix; another service's key is a logged 403 naming the key, and its value stays at the fallback", TEST_TIMEOUT, async (t) => {
    const api = await startConsul(t);
    api.putKey("meshwork/payments/transient-failure-rate", "0.25");
    api.putKey("meshwork/gateway/rate-limit-per-user-rps", "99");
    const paymentsToken = await grantConsulToken({ api, managementToken: MANAGEMENT, name: "payments", rules: 'key_prefix "meshwork/payments/" { policy = "read" }' });
    const logs = createLogCapture();
    const config = createConsulLiveConfig({ consul: { host: api.host, port: api.port, token: paymentsToken }, log: logs.log, watchWait: "200ms", retryMaxMs: 300 });
    t.onTestFinished(() => config.close());

    const own = config.value("payments/transient-failure-rate", z.number(), 0);
    const refused = logs.next((entry) => entry.level === "error");
    const foreign = config.value("gateway/rate-limit-per-user-rps", z.number(), 20);
    await config.ready();
    assert.equal(own.get(), 0.25);
    assert.equal(foreign.get(), 20);
    const entry = await refused;
    assert.match(String(entry.msg), /cannot read live setting meshwork\/gateway\/rate-limit-per-user-rps/);
    assert.match(String(entry.msg), /lacks permission 'key:read' on "meshwork\/gateway\/rate-limit-per-user-rps"/);
    assert.equal(api.requests("/v1/kv/meshwork/gateway/rate-limit-per-user-rps")[0]?.status, 403);

    // The token may not write its own prefix either (read only), let alone another's.
    for (const key of ["meshwork/payments/transient-failure-rate", "meshwork/gateway/rate-limit-per-user-rps"]) {
      const put = await fetch(`http://${api.host}:${api.port}/v1/kv/${key}`, { method: "PUT", headers: { "X-Consul-Token": paymentsToken }, body: "1" });
      assert.equal(put.status, 403, key);
      assert.match(await put.text(), /lacks permission 'key:write'/);
    }
  });
});

describe("the Consul token setting", () => {
  test("CONSUL_HTTP_TOKEN may come from CONSUL_HTTP_TOKEN_FILE, so compose mounts it as a secret file", () => {
    const dir = mkdtempSync(join(tmpdir(), "consul-token-"));
    const file = join(dir, "token");
    writeFileSync(file, "0e6f0c3e-56b6-4a0f-9b1e-d1a8c5f0b0aa\n");
    const config = loadConfig(serviceSettings("DEMO", { port: 50099, metricsPort: 9499, dataDir: "memory://" }), { CONSUL_HTTP_TOKEN_FILE: file });
    assert.equal(config.consulToken, "0e6f0c3e-56b6-4a0f-9b1e-d1a8c5f0b0aa");
  });
});
