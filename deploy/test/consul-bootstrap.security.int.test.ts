/**
 * deploy/consul/acl-bootstrap.mjs (compose's consul-seed) run as compose runs
 * it, a plain `node` child process, against the simulated Consul HTTP API on
 * 127.0.0.1 with ACLs enforced as Consul documents them. NO Consul agent ran:
 * none can be installed here; compose runs the real one.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, test } from "vitest";
import { createConsulHttpApi, type ConsulHttpApi, type TestScope } from "@meshwork/testing";
import { APP_SERVICES, type AppService } from "../call-graph.js";
import { CONSUL_NODE_NAME, consulAclPlan } from "../consul/acl-policies.js";

const root = path.resolve(import.meta.dirname, "../..");
const SCRIPT = path.join(root, "deploy/consul/acl-bootstrap.mjs");
const TEST_TIMEOUT = { timeout: 30_000 };

interface Secrets {
  readonly dir: string;
  readonly management: string;
  readonly tokens: Record<AppService, string>;
}

function writeSecrets(t: TestScope, management = randomUUID()): Secrets {
  const dir = mkdtempSync(path.join(tmpdir(), "consul-secrets-"));
  t.onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, "management-token"), `${management}\n`);
  const tokens = {} as Record<AppService, string>;
  for (const service of APP_SERVICES) {
    tokens[service] = randomUUID();
    writeFileSync(path.join(dir, `${service}-token`), `${tokens[service]}\n`);
  }
  return { dir, management, tokens };
}

async function startConsul(t: TestScope, initialManagementToken?: string): Promise<ConsulHttpApi> {
  const api = createConsulHttpApi({ nodeName: CONSUL_NODE_NAME, acl: { defaultPolicy: "deny", ...(initialManagementToken === undefined ? {} : { initialManagementToken }) } });
  await api.start();
  t.onTestFinished(() => api.stop());
  return api;
}

function runBootstrap(api: ConsulHttpApi, secrets: Secrets): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SCRIPT], {
      env: {
        PATH: process.env.PATH ?? "",
        CONSUL_HTTP_ADDR: `http://${api.host}:${api.port}`,
        CONSUL_SECRETS_DIR: secrets.dir,
        CONSUL_WAIT_SECONDS: "5",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

async function status(api: ConsulHttpApi, method: string, route: string, token: string | undefined, body?: unknown): Promise<number> {
  const response = await fetch(`http://${api.host}:${api.port}${route}`, {
    method,
    headers: token === undefined ? {} : { "X-Consul-Token": token },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  await response.arrayBuffer();
  return response.status;
}

/** What each service's token may do after the bootstrap, checked through the HTTP API. */
async function assertServiceTokens(api: ConsulHttpApi, tokens: Record<AppService, string>): Promise<void> {
  assert.equal(await status(api, "PUT", "/v1/agent/service/register", tokens.identity, { Name: "identity", ID: "identity-1", Port: 50051 }), 200);
  assert.equal(await status(api, "PUT", "/v1/agent/service/register", tokens.identity, { Name: "catalog", ID: "catalog-evil", Port: 50052 }), 403);
  assert.equal(await status(api, "PUT", "/v1/agent/service/register", tokens.gateway, { Name: "gateway", ID: "gateway-1", Port: 8080 }), 403);
  assert.equal(await status(api, "GET", "/v1/kv/meshwork/gateway/rate-limit-per-user-rps", tokens.gateway), 200);
  assert.equal(await status(api, "PUT", "/v1/kv/meshwork/gateway/rate-limit-per-user-rps", tokens.gateway, 1000), 403);
  assert.equal(await status(api, "GET", "/v1/kv/meshwork/payments/processor-latency-ms", tokens.payments), 200);
  assert.equal(await status(api, "GET", "/v1/kv/meshwork/payments/processor-latency-ms", tokens.gateway), 403);
  assert.equal(await status(api, "GET", "/v1/kv/meshwork/gateway/rate-limit-per-user-rps", tokens.identity), 403);
}

describe("deploy/consul/acl-bootstrap.mjs against the simulated Consul HTTP API with ACLs (not a live agent)", () => {
  test("creates a policy and a token per service with the SecretIDs from the files, the agent token, and the KV seed", TEST_TIMEOUT, async (t) => {
    const secrets = writeSecrets(t);
    const api = await startConsul(t, secrets.management);
    const run = await runBootstrap(api, secrets);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /policy meshwork-identity: created/);
    assert.match(run.stdout, /token of identity \([0-9a-f-]+\): created/);
    assert.match(run.stdout, /imported 6 live settings/);
    for (const secret of [secrets.management, ...Object.values(secrets.tokens)]) assert.ok(!`${run.stdout}${run.stderr}`.includes(secret), "no secret is printed");

    await assertServiceTokens(api, secrets.tokens);

    // The agent got a token of its own that may write its node.
    const agentToken = api.agentToken("agent");
    assert.ok(agentToken !== undefined && agentToken !== secrets.management);
    const self = (await (await fetch(`http://${api.host}:${api.port}/v1/acl/token/self`, { headers: { "X-Consul-Token": agentToken } })).json()) as { AccessorID: string };
    assert.equal(self.AccessorID, consulAclPlan().agent.accessorId);

    const seed = JSON.parse(readFileSync(path.join(root, "deploy/consul/kv.json"), "utf8")) as { key: string; value: string }[];
    for (const entry of seed) {
      const response = await fetch(`http://${api.host}:${api.port}/v1/kv/${entry.key}?raw`, { headers: { "X-Consul-Token": secrets.management } });
      assert.equal(Buffer.from(await response.arrayBuffer()).toString("base64"), entry.value, entry.key);
    }
  });

  test("is idempotent: a second run updates and succeeds; a regenerated secret file replaces that token and the old secret stops working", TEST_TIMEOUT, async (t) => {
    const secrets = writeSecrets(t);
    const api = await startConsul(t, secrets.management);
    assert.equal((await runBootstrap(api, secrets)).code, 0);

    const again = await runBootstrap(api, secrets);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /policy meshwork-orders: updated/);
    assert.match(again.stdout, /token of orders \([0-9a-f-]+\): updated/);
    await assertServiceTokens(api, secrets.tokens);

    const oldSecret = secrets.tokens.gateway;
    const rotated: Secrets = { ...secrets, tokens: { ...secrets.tokens, gateway: randomUUID() } };
    writeFileSync(path.join(secrets.dir, "gateway-token"), rotated.tokens.gateway);
    const third = await runBootstrap(api, rotated);
    assert.equal(third.code, 0, third.stderr);
    assert.match(third.stdout, /token of gateway \([0-9a-f-]+\): replaced \(new secret\)/);
    assert.equal(await status(api, "GET", "/v1/kv/meshwork/gateway/rate-limit-per-user-rps", oldSecret), 403);
    assert.equal(await status(api, "GET", "/v1/kv/meshwork/gateway/rate-limit-per-user-rps", rotated.tokens.gateway), 200);
  });

  test("without initial_management in the agent's config it bootstraps the ACL system with the management token", TEST_TIMEOUT, async (t) => {
    const secrets = writeSecrets(t);
    const api = await startConsul(t);
    const run = await runBootstrap(api, secrets);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /ACL system bootstrapped with the management token/);
    await assertServiceTokens(api, secrets.tokens);
    assert.equal((await runBootstrap(api, secrets)).code, 0, "and a re-run finds the token working");
  });

  test("a missing or malformed secret file stops it before anything changes, naming the file", TEST_TIMEOUT, async (t) => {
    const secrets = writeSecrets(t);
    const api = await startConsul(t, secrets.management);
    rmSync(path.join(secrets.dir, "payments-token"));
    const missing = await runBootstrap(api, secrets);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot read payments's Consul token from .*payments-token: ENOENT/);
    assert.equal(api.requests().length, 0, "nothing was sent to Consul");

    writeFileSync(path.join(secrets.dir, "payments-token"), "hunter2");
    const malformed = await runBootstrap(api, secrets);
    assert.equal(malformed.code, 1);
    assert.match(malformed.stderr, /payments's Consul token in .* is not a UUID/);
    assert.ok(!malformed.stderr.includes("hunter2"));
  });

  test("a wrong management token is refused with Consul's answer, not retried forever", TEST_TIMEOUT, async (t) => {
    const secrets = writeSecrets(t);
    const api = await startConsul(t, randomUUID());
    const run = await runBootstrap(api, secrets);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /Consul does not know the management token and refused to bootstrap \(403: Permission denied: ACL bootstrap no longer allowed/);
  });
});
