#!/usr/bin/env node
/**
 * compose's consul-seed: sets up Consul's ACLs for Meshwork and imports the
 * live settings, through the HTTP API, with the management token. Plain Node
 * (20+) ESM with no dependencies, so the stock node image runs it as mounted.
 *
 * Steps, each safe to repeat (a re-run updates and does not fail):
 * 1. wait until the agent has a leader (ACLs resolve only then);
 * 2. make sure the management token works: with acl.tokens.initial_management
 *    in the agent's config it does at once; otherwise bootstrap the ACL
 *    system with it as BootstrapSecret;
 * 3. create or update every policy of deploy/consul/acl.json (generated from
 *    the call graph by `npm run consul:acl`), found by name;
 * 4. the agent's token (Consul picks its secret) and PUT /v1/agent/token/agent,
 *    which the agent keeps across restarts (acl.enable_token_persistence);
 * 5. one token per service with the SecretID read from its file, under a fixed
 *    AccessorID: created, updated, or replaced when the secret changed;
 * 6. every key of deploy/consul/kv.json, as `consul kv import` would.
 *
 * The secret-file contract (compose mounts these; nothing is in the environment):
 *   $CONSUL_SECRETS_DIR  default /run/secrets/meshwork (compose's `secrets-consul`
 *                        volume, written by scripts/secrets-init.ts), holding
 *     management-token   the agent's acl.tokens.initial_management;
 *     <service>-token    one per service (gateway, identity, catalog, orders,
 *                        payments, notifications): that service's token, a UUID
 *                        (Consul refuses other SecretIDs); the same value the
 *                        service reads from CONSUL_HTTP_TOKEN_FILE.
 * Other settings: CONSUL_HTTP_ADDR (default http://consul:8500),
 * CONSUL_ACL_PLAN (default acl.json beside this script), CONSUL_KV_SEED
 * (default kv.json beside this script), CONSUL_WAIT_SECONDS (default 60).
 * Secrets are never printed.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const env = process.env;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

class BootstrapError extends Error {}

function settings() {
  const address = env.CONSUL_HTTP_ADDR || "http://consul:8500";
  return {
    base: (address.includes("://") ? address : `http://${address}`).replace(/\/+$/, ""),
    secretsDir: env.CONSUL_SECRETS_DIR || "/run/secrets/meshwork",
    planFile: env.CONSUL_ACL_PLAN || path.join(here, "acl.json"),
    seedFile: env.CONSUL_KV_SEED || path.join(here, "kv.json"),
    waitSeconds: Number(env.CONSUL_WAIT_SECONDS || "60"),
  };
}

function readSecret(file, what) {
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new BootstrapError(`cannot read ${what} from ${file}: ${error.code ?? error.message}`);
  }
  const secret = text.trim();
  if (secret === "") throw new BootstrapError(`${what} in ${file} is empty`);
  return secret;
}

function readJson(file, what) {
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new BootstrapError(`cannot read ${what} from ${file}: ${error.code ?? error.message}`);
  }
}

function createApi(base, token) {
  /** One HTTP call; answers { status, body } and throws only on a network failure. */
  async function call(method, route, { body, raw, withToken = true } = {}) {
    const headers = {};
    if (withToken) headers["X-Consul-Token"] = token;
    let payload;
    if (raw !== undefined) payload = raw;
    else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers["Content-Type"] = "application/json";
    }
    const response = await fetch(`${base}${route}`, { method, headers, body: payload, signal: AbortSignal.timeout(10_000) });
    const text = await response.text();
    let parsed = text;
    try {
      parsed = text === "" ? undefined : JSON.parse(text);
    } catch {
      // Consul answers errors as plain text.
    }
    return { status: response.status, body: parsed, text };
  }
  /** The same, but any answer other than 200 is an error naming the request. */
  async function ok(method, route, options) {
    const answer = await call(method, route, options);
    if (answer.status !== 200) throw new BootstrapError(`${method} ${route}: Consul answered ${answer.status}: ${answer.text.trim()}`);
    return answer.body;
  }
  return { call, ok };
}

async function waitForLeader(api, seconds) {
  const deadline = Date.now() + seconds * 1000;
  let last = "no answer yet";
  for (;;) {
    try {
      const answer = await api.call("GET", "/v1/status/leader", { withToken: false });
      if (answer.status === 200 && typeof answer.body === "string" && answer.body !== "") return;
      last = `status ${answer.status}, leader ${JSON.stringify(answer.body)}`;
    } catch (error) {
      last = error.cause?.code ?? error.message;
    }
    if (Date.now() >= deadline) throw new BootstrapError(`Consul at the configured address has no leader after ${seconds}s (${last})`);
    // Polling is the only way to learn the agent is up; compose's health check usually makes this one pass.
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function ensureManagement(api, managementToken) {
  const self = await api.call("GET", "/v1/acl/token/self");
  if (self.status === 200) return "management token accepted";
  if (!(self.status === 403 && /ACL not found/i.test(self.text))) {
    throw new BootstrapError(`GET /v1/acl/token/self with the management token: Consul answered ${self.status}: ${self.text.trim()}`);
  }
  // Not configured as initial_management: make it the bootstrap token.
  if (!UUID.test(managementToken)) throw new BootstrapError("the management token is unknown to Consul, and it is not a UUID, so it cannot be the ACL bootstrap secret");
  const bootstrap = await api.call("PUT", "/v1/acl/bootstrap", { body: { BootstrapSecret: managementToken }, withToken: false });
  if (bootstrap.status === 200) return "ACL system bootstrapped with the management token";
  throw new BootstrapError(
    `Consul does not know the management token and refused to bootstrap (${bootstrap.status}: ${bootstrap.text.trim()}): set acl.tokens.initial_management to the management token, or reset the ACL bootstrap`,
  );
}

/**
 * A read of a policy or token that does not exist: Consul has answered 404 in
 * some versions and 403 "ACL not found" in others. The management token was
 * checked first, so here "ACL not found" means the object, not the caller.
 */
function isMissing(answer) {
  return answer.status === 404 || (answer.status === 403 && /ACL not found/i.test(answer.text));
}

async function upsertPolicy(api, policy) {
  const found = await api.call("GET", `/v1/acl/policy/name/${encodeURIComponent(policy.name)}`);
  const body = { Name: policy.name, Description: policy.description, Rules: policy.rules };
  if (isMissing(found)) {
    await api.ok("PUT", "/v1/acl/policy", { body });
    return "created";
  }
  if (found.status !== 200) throw new BootstrapError(`GET policy ${policy.name}: Consul answered ${found.status}: ${found.text.trim()}`);
  await api.ok("PUT", `/v1/acl/policy/${found.body.ID}`, { body: { ...body, ID: found.body.ID } });
  return "updated";
}

/** Creates or updates a token under a fixed AccessorID; a changed secret means delete and create. */
async function upsertToken(api, { accessorId, secretId, description, policyName }) {
  const policies = [{ Name: policyName }];
  const found = await api.call("GET", `/v1/acl/token/${accessorId}`);
  if (found.status === 200) {
    if (secretId === undefined || found.body.SecretID === secretId) {
      return { action: "updated", token: await api.ok("PUT", `/v1/acl/token/${accessorId}`, { body: { AccessorID: accessorId, Description: description, Policies: policies } }) };
    }
    // Consul cannot change a token's secret: the secret file was regenerated.
    await api.ok("DELETE", `/v1/acl/token/${accessorId}`);
  } else if (!isMissing(found)) {
    throw new BootstrapError(`GET token ${accessorId} (${description}): Consul answered ${found.status}: ${found.text.trim()}`);
  }
  const body = { AccessorID: accessorId, Description: description, Policies: policies, ...(secretId === undefined ? {} : { SecretID: secretId }) };
  return { action: found.status === 200 ? "replaced (new secret)" : "created", token: await api.ok("PUT", "/v1/acl/token", { body }) };
}

async function importKv(api, seed) {
  if (!Array.isArray(seed)) throw new BootstrapError("the KV seed is not a list of { key, flags, value }");
  for (const entry of seed) {
    if (typeof entry?.key !== "string" || entry.key === "" || typeof entry.value !== "string")
      throw new BootstrapError(`the KV seed has an entry without a key or a base64 value: ${JSON.stringify(entry)}`);
    const route = `/v1/kv/${entry.key.split("/").map(encodeURIComponent).join("/")}?flags=${Number(entry.flags ?? 0)}`;
    const written = await api.ok("PUT", route, { raw: Buffer.from(entry.value, "base64") });
    if (written !== true) throw new BootstrapError(`PUT ${entry.key}: Consul did not confirm the write`);
  }
  return seed.length;
}

async function main() {
  const config = settings();
  const plan = readJson(config.planFile, "the ACL plan");
  const seed = readJson(config.seedFile, "the KV seed");
  const managementToken = readSecret(path.join(config.secretsDir, "management-token"), "the Consul management token");
  // Read every service's secret before changing anything: a missing file stops the run early.
  const serviceSecrets = plan.services.map((entry) => {
    const file = path.join(config.secretsDir, `${entry.service}-token`);
    const secret = readSecret(file, `${entry.service}'s Consul token`);
    if (!UUID.test(secret)) throw new BootstrapError(`${entry.service}'s Consul token in ${file} is not a UUID (Consul accepts only UUIDs as SecretID)`);
    return secret;
  });
  if (new Set(serviceSecrets).size !== serviceSecrets.length) throw new BootstrapError("two services have the same Consul token: each needs its own");

  const api = createApi(config.base, managementToken);
  await waitForLeader(api, config.waitSeconds);
  console.log(await ensureManagement(api, managementToken));

  for (const policy of [plan.agent.policy, ...plan.services.map((entry) => entry.policy)]) {
    console.log(`policy ${policy.name}: ${await upsertPolicy(api, policy)}`);
  }

  const agent = await upsertToken(api, { accessorId: plan.agent.accessorId, description: plan.agent.description, policyName: plan.agent.policy.name });
  await api.ok("PUT", "/v1/agent/token/agent", { body: { Token: agent.token.SecretID } });
  console.log(`agent token ${plan.agent.accessorId}: ${agent.action}, set on the agent`);

  for (const [i, entry] of plan.services.entries()) {
    const result = await upsertToken(api, { accessorId: entry.accessorId, secretId: serviceSecrets[i], description: entry.description, policyName: entry.policy.name });
    console.log(`token of ${entry.service} (${entry.accessorId}): ${result.action}`);
  }

  console.log(`imported ${await importKv(api, seed)} live settings`);
}

main().catch((error) => {
  console.error(`consul ACL bootstrap failed: ${error instanceof BootstrapError ? error.message : (error?.stack ?? String(error))}`);
  process.exit(1);
});
