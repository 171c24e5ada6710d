/**
 * Consul with ACLs, default deny: the policies derived from the call graph
 * (deploy/consul/acl-policies.ts), the file compose loads (acl.json), the
 * agent's configuration and the compose blocks, and the real adapters run
 * with each service's policy against the simulated Consul HTTP API
 * (@meshwork/testing), which enforces ACLs as Consul's documentation
 * describes. NO Consul agent ran here: none can be installed on these
 * machines; compose runs the real one.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, test } from "vitest";
import { parse } from "yaml";
import { z } from "zod";
import { createConsulDiscovery, createConsulLiveConfig } from "@meshwork/platform";
import { createConsulHttpApi, createLogCapture, grantConsulToken, type ConsulHttpApi, type TestScope } from "@meshwork/testing";
import { APP_SERVICES, type AppService } from "../call-graph.js";
import { calleesOf, CONSUL_NODE_NAME, consulAclPlan, LIVE_CONFIG_READERS, serviceRules } from "../consul/acl-policies.js";

const root = path.resolve(import.meta.dirname, "../..");
const read = (file: string): string => readFileSync(path.join(root, file), "utf8");
const MANAGEMENT = "0b7f5d8e-6c2a-4e1b-9f3d-8a4c2e6b1d90";
const TEST_TIMEOUT = { timeout: 20_000 };

describe("the Consul ACL policies (one per service, from the call graph)", () => {
  test("deploy/consul/acl.json is what `npm run consul:acl` renders from the call graph", () => {
    assert.deepEqual(JSON.parse(read("deploy/consul/acl.json")), JSON.parse(JSON.stringify(consulAclPlan())), "run `npm run consul:acl`");
  });

  test("the services given KV read are exactly those whose main.ts reads live settings", () => {
    const readers = APP_SERVICES.filter((service) => read(`services/${service}/src/main.ts`).includes("createLiveConfigFor(")).sort();
    assert.deepEqual([...LIVE_CONFIG_READERS].sort(), readers);
  });

  test("each policy grants exactly this: register itself, discover its callees, read its own prefix; nobody writes KV", () => {
    const rendered = Object.fromEntries(APP_SERVICES.map((service) => [service, serviceRules(service).map((rule) => `${rule.resource} "${rule.segment}" ${rule.policy}`)]));
    assert.deepEqual(rendered, {
      gateway: [
        'service "catalog" read',
        'service "identity" read',
        'service "notifications" read',
        'service "orders" read',
        'service "payments" read',
        'node_prefix "" read',
        'key_prefix "meshwork/gateway/" read',
      ],
      identity: ['service "identity" write'],
      catalog: ['service "catalog" write'],
      orders: ['service "orders" write', 'service "catalog" read', 'service "identity" read', 'service "payments" read', 'node_prefix "" read', 'key_prefix "meshwork/orders/" read'],
      payments: ['service "payments" write', 'key_prefix "meshwork/payments/" read'],
      notifications: ['service "notifications" write', 'service "identity" read', 'node_prefix "" read', 'key_prefix "meshwork/notifications/" read'],
    });
    for (const service of APP_SERVICES) {
      for (const rule of serviceRules(service)) {
        assert.ok(!(rule.resource.startsWith("key") && rule.policy === "write"), `${service} may write KV`);
        assert.ok(!(rule.policy === "write" && rule.segment !== service), `${service} may write ${rule.resource} "${rule.segment}"`);
        assert.ok(!rule.resource.endsWith("_prefix") || rule.resource === "node_prefix" || rule.segment === `meshwork/${service}/`, `${service} has a broad ${rule.resource}`);
      }
    }
  });
});

describe("the compose Consul agent and its bootstrap", () => {
  const compose = parse(read("compose.yaml")) as { services: Record<string, { command: string[]; volumes: string[]; healthcheck: { test: string[] }; image: string }> };

  test("the agent runs with ACLs enabled, default deny, token persistence, the management token from a secret file, not dev mode", () => {
    const agent = read("deploy/consul/agent.hcl");
    assert.match(agent, /acl\s*\{[^}]*enabled\s*=\s*true/);
    assert.match(agent, /default_policy\s*=\s*"deny"/);
    assert.match(agent, /enable_token_persistence\s*=\s*true/);
    assert.match(agent, new RegExp(`node_name\\s*=\\s*"${CONSUL_NODE_NAME}"`));
    const consul = compose.services.consul;
    assert.ok(consul);
    const script = consul.command.join(" ");
    assert.ok(!script.includes("-dev"), "not dev mode");
    assert.match(script, /cat \/run\/secrets\/meshwork\/management-token/);
    assert.match(script, /initial_management/);
    assert.match(script, /agent -config-file=\/etc\/meshwork\/consul\/agent\.hcl/);
    assert.ok(consul.volumes.includes("./deploy/consul/agent.hcl:/etc/meshwork/consul/agent.hcl:ro"));
    assert.match(consul.healthcheck.test.join(" "), /CONSUL_HTTP_TOKEN_FILE=\/run\/secrets\/meshwork\/management-token/);
  });

  test("consul-seed runs the bootstrap with Node, with the plan, the KV seed and the script mounted", () => {
    const seed = compose.services["consul-seed"];
    assert.ok(seed);
    assert.deepEqual(seed.command, ["node", "/seed/acl-bootstrap.mjs"]);
    assert.match(seed.image, /^node:\d+\.\d+\.\d+-bookworm-slim$/);
    for (const file of ["acl-bootstrap.mjs", "acl.json", "kv.json"]) assert.ok(seed.volumes.includes(`./deploy/consul/${file}:/seed/${file}:ro`), file);
  });
});

async function startConsul(t: TestScope): Promise<ConsulHttpApi> {
  const api = createConsulHttpApi({ acl: { defaultPolicy: "deny", initialManagementToken: MANAGEMENT } });
  await api.start();
  t.onTestFinished(() => api.stop());
  return api;
}

/** Loads every service's policy from the plan and answers each service's token. */
async function grantPlan(api: ConsulHttpApi): Promise<Record<AppService, string>> {
  const tokens = {} as Record<AppService, string>;
  for (const entry of consulAclPlan().services) {
    tokens[entry.service] = await grantConsulToken({ api, managementToken: MANAGEMENT, name: entry.policy.name, rules: entry.policy.rules });
  }
  return tokens;
}

function adaptersFor(t: TestScope, api: ConsulHttpApi, token: string) {
  const logs = createLogCapture();
  const consul = { host: api.host, port: api.port, token };
  const discovery = createConsulDiscovery({ consul, log: logs.log, watchWait: "200ms", retryMaxMs: 300 });
  const live = createConsulLiveConfig({ consul, log: logs.log, watchWait: "200ms", retryMaxMs: 300 });
  t.onTestFinished(() => {
    discovery.resolver.close();
    live.close();
  });
  return { discovery, live, logs };
}

describe("the real adapters with each service's policy (simulated Consul HTTP API with ACLs, not a live agent)", () => {
  test("with its own token each service does everything it does: registers itself, finds its callees' passing instances, reads its live settings", TEST_TIMEOUT, async (t) => {
    const api = await startConsul(t);
    const tokens = await grantPlan(api);
    const seed = JSON.parse(read("deploy/consul/kv.json")) as { key: string; value: string }[];
    for (const entry of seed) api.putKey(entry.key, Buffer.from(entry.value, "base64").toString("utf8"));
    for (const service of LIVE_CONFIG_READERS) api.putKey(`meshwork/${service}/probe`, "7");

    const registering = APP_SERVICES.filter((service) => serviceRules(service).some((rule) => rule.resource === "service" && rule.segment === service && rule.policy === "write"));
    for (const service of registering) {
      const { discovery } = adaptersFor(t, api, tokens[service]);
      await discovery.registry.register({ name: service, id: `${service}-1`, host: "127.0.0.1", port: 50_000 + registering.indexOf(service) });
      api.setCheckStatus(`${service}-1`, "passing");
    }

    for (const service of APP_SERVICES) {
      const { discovery, live, logs } = adaptersFor(t, api, tokens[service]);
      for (const callee of calleesOf(service)) {
        const watch = discovery.resolver.watch(callee);
        await watch.ready();
        assert.deepEqual(
          watch.instances().map((instance) => instance.id),
          [`${callee}-1`],
          `${service} finds ${callee}`,
        );
      }
      if (LIVE_CONFIG_READERS.includes(service)) {
        const probe = live.value(`${service}/probe`, z.number(), 0);
        await live.ready();
        assert.equal(probe.get(), 7, `${service} reads its own live settings`);
      }
      assert.deepEqual(
        logs.entries.filter((entry) => entry.level === "error"),
        [],
        `${service} hit no ACL refusal`,
      );
    }
  });

  test("no service can register another: identity's token cannot register catalog, nor the gateway's anything", TEST_TIMEOUT, async (t) => {
    const api = await startConsul(t);
    const tokens = await grantPlan(api);
    for (const service of APP_SERVICES) {
      const { discovery } = adaptersFor(t, api, tokens[service]);
      for (const other of APP_SERVICES.filter((name) => name !== service)) {
        await assert.rejects(
          discovery.registry.register({ name: other, id: `${other}-by-${service}`, host: "10.6.6.6", port: 1 }),
          /lacks permission 'service:write'/,
          `${service} registered ${other}`,
        );
      }
    }
    await assert.rejects(
      adaptersFor(t, api, tokens.gateway).discovery.registry.register({ name: "gateway", id: "gateway-1", host: "127.0.0.1", port: 8080 }),
      /lacks permission 'service:write' on "gateway"/,
    );
    assert.equal(api.requests("/v1/agent/service/register").filter((request) => request.status === 200).length, 0);
  });

  test("a service can neither read nor write another's KV prefix, and the gateway (like every service) cannot write KV at all", TEST_TIMEOUT, async (t) => {
    const api = await startConsul(t);
    const tokens = await grantPlan(api);
    for (const service of APP_SERVICES) api.putKey(`meshwork/${service}/probe`, "1");
    const status = async (method: string, key: string, token: string): Promise<number> =>
      (await fetch(`http://${api.host}:${api.port}/v1/kv/${key}`, { method, headers: { "X-Consul-Token": token }, ...(method === "PUT" ? { body: "2" } : {}) })).status;
    for (const service of APP_SERVICES) {
      for (const owner of APP_SERVICES) {
        const key = `meshwork/${owner}/probe`;
        const canRead = owner === service && LIVE_CONFIG_READERS.includes(service);
        assert.equal(await status("GET", key, tokens[service]), canRead ? 200 : 403, `${service} reading ${key}`);
        assert.equal(await status("PUT", key, tokens[service]), 403, `${service} writing ${key}`);
        assert.equal(await status("DELETE", key, tokens[service]), 403, `${service} deleting ${key}`);
      }
    }
    // The live-config adapter says why a foreign key stays at its fallback.
    const { live, logs } = adaptersFor(t, api, tokens.gateway);
    const foreign = live.value("payments/probe", z.number(), 0);
    await live.ready();
    assert.equal(foreign.get(), 0);
    assert.ok(logs.entries.some((entry) => entry.level === "error" && /lacks permission 'key:read' on "meshwork\/payments\/probe"/.test(String(entry.msg))));
  });

  test("a service does not see instances of a service it does not call, and anonymous requests get nothing", TEST_TIMEOUT, async (t) => {
    const api = await startConsul(t);
    const tokens = await grantPlan(api);
    await adaptersFor(t, api, tokens.catalog).discovery.registry.register({ name: "catalog", id: "catalog-1", host: "127.0.0.1", port: 50052 });
    api.setCheckStatus("catalog-1", "passing");
    api.putKey("meshwork/gateway/rate-limit-per-user-rps", "20");

    // notifications calls identity only.
    const { discovery, logs } = adaptersFor(t, api, tokens.notifications);
    const watch = discovery.resolver.watch("catalog");
    await watch.ready();
    assert.deepEqual(watch.instances(), []);
    assert.ok(logs.entries.some((entry) => entry.level === "error" && String(entry.msg).includes('needs service "catalog" { policy = "read" }')));

    const anonymous = async (method: string, route: string, body?: string): Promise<number> =>
      (await fetch(`http://${api.host}:${api.port}${route}`, { method, ...(body === undefined ? {} : { body }) })).status;
    assert.equal(await anonymous("GET", "/v1/kv/meshwork/gateway/rate-limit-per-user-rps"), 403);
    assert.equal(await anonymous("PUT", "/v1/kv/meshwork/gateway/rate-limit-per-user-rps", "1000"), 403);
    assert.equal(await anonymous("PUT", "/v1/agent/service/register", JSON.stringify({ Name: "identity", Port: 1 })), 403);
    assert.equal(await anonymous("PUT", "/v1/agent/service/deregister/catalog-1"), 403);
    const health = await fetch(`http://${api.host}:${api.port}/v1/health/service/catalog?passing=true`);
    assert.deepEqual(await health.json(), []);
    assert.ok(api.registration("catalog-1"), "catalog is still registered");
  });

  test("the agent's policy lets it keep its node in the catalog, nothing more", () => {
    const { agent } = consulAclPlan();
    assert.equal(agent.node, CONSUL_NODE_NAME);
    assert.match(agent.policy.rules, new RegExp(`node "${CONSUL_NODE_NAME}" \\{\\n  policy = "write"`));
    assert.match(agent.policy.rules, /service_prefix "" \{\n {2}policy = "read"/);
    assert.ok(!/key|acl|agent/.test(agent.policy.rules.replace(/#.*\n/g, "")));
  });
});
