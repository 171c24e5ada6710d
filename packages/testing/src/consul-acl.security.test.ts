/**
 * The simulated Consul's ACL enforcement, against what Consul's ACL
 * documentation says (rules reference, tokens, HTTP API). The adapters are
 * only as well tested as this simulation is faithful, so its rules engine and
 * its token handling are tested here on their own. No Consul agent ran.
 */
import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { AclRuleError, createAuthorizer, parseAclRules } from "./consul-acl.js";
import { createConsulHttpApi, type ConsulHttpApi } from "./consul-http-api.js";
import type { TestScope } from "./scope.js";

const MANAGEMENT = "3f0b8f0e-8d52-4a55-9a3f-6a3e8e1c2b7d";

describe("Consul ACL rules as documented (simulation)", () => {
  test("an exact rule beats any prefix rule, and the longest prefix decides among prefixes", () => {
    const authz = createAuthorizer(
      [
        parseAclRules(`
          key_prefix "" { policy = "read" }
          key_prefix "meshwork/" { policy = "write" }
          key_prefix "meshwork/private/" { policy = "deny" }
          key "meshwork/private/open" { policy = "read" }
        `),
      ],
      "deny",
    );
    assert.equal(authz.allows("key", "other/x", "read"), true);
    assert.equal(authz.allows("key", "other/x", "write"), false);
    assert.equal(authz.allows("key", "meshwork/a", "write"), true);
    assert.equal(authz.allows("key", "meshwork/private/secret", "read"), false);
    assert.equal(authz.allows("key", "meshwork/private/open", "read"), true);
    assert.equal(authz.allows("key", "meshwork/private/open", "write"), false);
  });

  test("deny wins over write, and write over read, for the same segment in several policies", () => {
    const authz = createAuthorizer(
      [parseAclRules('service "catalog" { policy = "write" }\nservice "orders" { policy = "read" }'), parseAclRules('service "catalog" { policy = "deny" }\nservice "orders" { policy = "write" }')],
      "allow",
    );
    assert.equal(authz.allows("service", "catalog", "read"), false);
    assert.equal(authz.allows("service", "orders", "write"), true);
    // No rule: the default policy.
    assert.equal(authz.allows("service", "payments", "write"), true);
  });

  test("no matching rule falls to the default policy deny; list grants read but not write", () => {
    const authz = createAuthorizer([parseAclRules('{"key_prefix": {"a/": {"policy": "list"}}, "node_prefix": {"": {"policy": "read"}}, "acl": "read"}')], "deny");
    assert.equal(authz.allows("key", "a/b", "read"), true);
    assert.equal(authz.allows("key", "a/b", "list"), true);
    assert.equal(authz.allows("key", "a/b", "write"), false);
    assert.equal(authz.allows("key", "b", "read"), false);
    assert.equal(authz.allows("node", "consul", "read"), true);
    assert.equal(authz.allows("agent", "consul", "read"), false);
    assert.equal(authz.allows("acl", "", "read"), true);
    assert.equal(authz.allows("acl", "", "write"), false);
  });

  test("invalid rules are refused with what is wrong", () => {
    assert.throws(
      () => parseAclRules('service "x" { policy = "admin" }'),
      (error: Error) => error instanceof AclRuleError && /invalid policy "admin"/.test(error.message),
    );
    assert.throws(() => parseAclRules('services "x" { policy = "read" }'), /unknown ACL resource "services"/);
    assert.throws(() => parseAclRules('service "x" { policy = "list" }'), /"list" is only valid for key_prefix/);
    assert.throws(() => parseAclRules('key = "read"'), /not a valid rule/);
  });
});

async function start(t: TestScope): Promise<ConsulHttpApi> {
  const api = createConsulHttpApi({ acl: { initialManagementToken: MANAGEMENT } });
  await api.start();
  t.onTestFinished(() => api.stop());
  return api;
}

async function call(
  api: ConsulHttpApi,
  method: string,
  route: string,
  options: { headers?: Record<string, string>; body?: unknown } = {},
): Promise<{ status: number; text: string; headers: Headers }> {
  const response = await fetch(`http://${api.host}:${api.port}${route}`, {
    method,
    headers: options.headers ?? {},
    ...(options.body === undefined ? {} : { body: typeof options.body === "string" ? options.body : JSON.stringify(options.body) }),
  });
  return { status: response.status, text: await response.text(), headers: response.headers };
}

describe("the simulated Consul HTTP API with ACLs on (default deny)", () => {
  test("the anonymous token gets nothing: 403 Permission denied on KV and registration, an ACL-filtered empty health list", async (t) => {
    const api = await start(t);
    api.putKey("meshwork/payments/x", "1");
    const read = await call(api, "GET", "/v1/kv/meshwork/payments/x");
    assert.equal(read.status, 403);
    assert.equal(read.text, `Permission denied: token with AccessorID '00000000-0000-0000-0000-000000000002' lacks permission 'key:read' on "meshwork/payments/x"`);
    const register = await call(api, "PUT", "/v1/agent/service/register", { body: { Name: "identity", Port: 1 } });
    assert.equal(register.status, 403);
    assert.match(register.text, /lacks permission 'service:write' on "identity"/);

    await call(api, "PUT", "/v1/agent/service/register", { headers: { "X-Consul-Token": MANAGEMENT }, body: { Name: "identity", Port: 1 } });
    const health = await call(api, "GET", "/v1/health/service/identity");
    assert.equal(health.status, 200);
    assert.deepEqual(JSON.parse(health.text), []);
    assert.equal(health.headers.get("x-consul-results-filtered-by-acls"), "true");
  });

  test("the token is taken from X-Consul-Token, Authorization: Bearer or ?token=; an unknown one is 403 ACL not found", async (t) => {
    const api = await start(t);
    api.putKey("k", "v");
    assert.equal((await call(api, "GET", "/v1/kv/k", { headers: { "X-Consul-Token": MANAGEMENT } })).status, 200);
    assert.equal((await call(api, "GET", "/v1/kv/k", { headers: { Authorization: `Bearer ${MANAGEMENT}` } })).status, 200);
    assert.equal((await call(api, "GET", `/v1/kv/k?token=${MANAGEMENT}`)).status, 200);
    const unknown = await call(api, "GET", "/v1/kv/k", { headers: { "X-Consul-Token": "7c1f0a43-2f4c-4f3e-8f54-1b0fbbf61c55" } });
    assert.deepEqual([unknown.status, unknown.text], [403, "ACL not found"]);
  });

  test("policies and tokens: a caller-chosen SecretID works at once; a duplicate name or secret, or a non-UUID secret, is refused", async (t) => {
    const api = await start(t);
    const auth = { "X-Consul-Token": MANAGEMENT };
    const policy = await call(api, "PUT", "/v1/acl/policy", { headers: auth, body: { Name: "reader", Rules: 'key_prefix "a/" { policy = "read" }' } });
    assert.equal(policy.status, 200);
    assert.match((await call(api, "PUT", "/v1/acl/policy", { headers: auth, body: { Name: "reader", Rules: "" } })).text, /A Policy with Name "reader" already exists/);
    assert.match(
      (await call(api, "PUT", "/v1/acl/policy", { headers: auth, body: { Name: "bad", Rules: 'key "a" { policy = "own" }' } })).text,
      /failed to parse rules: key "a": invalid policy "own"/,
    );

    // A policy or token that does not exist reads as 403 "ACL not found", as Consul answers.
    const missing = await call(api, "GET", "/v1/acl/policy/name/nobody", { headers: auth });
    assert.deepEqual([missing.status, missing.text], [403, "ACL not found"]);

    const secret = "1b4e28ba-2fa1-41d2-883f-0016d3cca427";
    const token = await call(api, "PUT", "/v1/acl/token", { headers: auth, body: { SecretID: secret, Policies: [{ Name: "reader" }] } });
    assert.equal(token.status, 200);
    assert.equal(JSON.parse(token.text).SecretID, secret);
    api.putKey("a/1", "x");
    api.putKey("b/1", "x");
    assert.equal((await call(api, "GET", "/v1/kv/a/1", { headers: { "X-Consul-Token": secret } })).status, 200);
    assert.equal((await call(api, "GET", "/v1/kv/b/1", { headers: { "X-Consul-Token": secret } })).status, 403);
    assert.equal((await call(api, "PUT", "/v1/kv/a/1", { headers: { "X-Consul-Token": secret }, body: "y" })).status, 403);
    // A token without acl:write may not mint tokens.
    assert.match((await call(api, "PUT", "/v1/acl/token", { headers: { "X-Consul-Token": secret }, body: {} })).text, /lacks permission 'acl:write'/);

    assert.match((await call(api, "PUT", "/v1/acl/token", { headers: auth, body: { SecretID: secret } })).text, /SecretID is already in use/);
    assert.match((await call(api, "PUT", "/v1/acl/token", { headers: auth, body: { SecretID: "not-a-uuid" } })).text, /SecretID is not a valid UUID/);
  });

  test("bootstrap hands out a management token once; with initial_management configured it is already done", async (t) => {
    const fresh = createConsulHttpApi({ acl: {} });
    await fresh.start();
    t.onTestFinished(() => fresh.stop());
    const secret = "9e1a2c7e-3c3b-4f6b-b8c6-2f9a7d1e5a10";
    const first = await call(fresh, "PUT", "/v1/acl/bootstrap", { body: { BootstrapSecret: secret } });
    assert.equal(first.status, 200);
    assert.equal(JSON.parse(first.text).SecretID, secret);
    assert.equal((await call(fresh, "GET", "/v1/acl/token/self", { headers: { "X-Consul-Token": secret } })).status, 200);
    const again = await call(fresh, "PUT", "/v1/acl/bootstrap", {});
    assert.equal(again.status, 403);
    assert.match(again.text, /ACL bootstrap no longer allowed/);

    const configured = await start(t);
    assert.match((await call(configured, "PUT", "/v1/acl/bootstrap", {})).text, /ACL bootstrap no longer allowed/);
  });

  test("without acl options nothing changes: no token needed, as the existing tests expect", async (t) => {
    const api = createConsulHttpApi();
    await api.start();
    t.onTestFinished(() => api.stop());
    api.putKey("k", "v");
    assert.equal((await call(api, "GET", "/v1/kv/k")).status, 200);
    assert.equal((await call(api, "PUT", "/v1/agent/service/register", { body: { Name: "x", Port: 1 } })).status, 200);
  });
});
