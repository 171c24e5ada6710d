/**
 * Point 5 of the security issue, as deployed: the gateway's optional handlers
 * (MeshService, reflection, health Watch) stay off or behind a token, and its
 * edge bounds stay at the code's defaults or tighter, in what compose and
 * Kubernetes really run. The gateway's own tests prove the defaults; these
 * prove no deployment file undoes them. Each environment is read the way the
 * gateway reads it (loadGatewayConfig, defaults and the refusal of retired
 * settings included) from the image's ENV plus compose.yaml (and
 * compose.offline.yaml over it), or the rendered (offline `kubectl
 * kustomize`) Kubernetes Deployment.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, test } from "vitest";
import { gatewayConfigSpec, loadGatewayConfig } from "../../services/gateway/src/config.js";
import { DEV_EDGE_EXPOSURE } from "../../scripts/lib/dev-edge.js";
import { parseCompose } from "../compose-schema.js";
import type { KubeObject } from "../graph-checks.js";
import { renderKustomize } from "../kustomize.js";

const root = path.resolve(import.meta.dirname, "../..");
const read = (file: string) => readFileSync(path.join(root, file), "utf8");

/** The edge settings a deployment must not loosen: the upper bound each may take is the code's default. */
const BOUNDS = ["maxStreamsPerConnection", "maxStreamsPerUser", "idleTimeoutMs", "maxHeaderBytes", "maxRequestBytes"] as const;
const EXPOSURES = ["meshStatus", "reflection", "healthWatch"] as const;
/** Every variable named above, for the places (image, envFrom, valueFrom) whose values this file cannot read. */
const EDGE_VARIABLES: string[] = [...BOUNDS, ...EXPOSURES, "trustedProxies" as const].map((key) => gatewayConfigSpec[key].env);

/** Compose's `environment:` as a map, in either of its two spellings. */
function environmentOf(service: { environment?: Record<string, unknown> | string[] } | undefined): Record<string, string> {
  const environment = service?.environment ?? {};
  if (Array.isArray(environment)) return Object.fromEntries(environment.map((entry) => [entry.split("=")[0]!, entry.slice(entry.indexOf("=") + 1)]));
  return Object.fromEntries(Object.entries(environment).map(([key, value]) => [key, value === null ? "" : String(value)]));
}

const SETTINGS = new Set(Object.values(gatewayConfigSpec).map((setting) => setting.env));

/**
 * The gateway's configuration from `env`, as it loads it. A secret's
 * `<VAR>_FILE` (a path that exists only in the container) is never an edge
 * setting, so it is left out.
 */
const gatewayConfigOf = (env: Readonly<Record<string, string>>) => loadGatewayConfig(Object.fromEntries(Object.entries(env).filter(([key]) => SETTINGS.has(key) || !key.endsWith("_FILE"))));

/** What is wrong with the edge `env` gives the gateway. */
function edgeProblems(env: Readonly<Record<string, string>>): string[] {
  const config = gatewayConfigOf(env);
  const problems: string[] = [];
  for (const key of EXPOSURES) if (config[key] === "public") problems.push(`${gatewayConfigSpec[key].env}=public: open to anyone`);
  for (const key of BOUNDS) {
    const limit = gatewayConfigSpec[key].default;
    if (config[key] > limit) problems.push(`${gatewayConfigSpec[key].env}=${config[key]}: above the default ${limit}`);
  }
  for (const entry of config.trustedProxies.split(",").map((part) => part.trim()))
    if (/\/0$/.test(entry) || entry === "*") problems.push(`${gatewayConfigSpec.trustedProxies.env} trusts ${entry}: every address may write X-Forwarded-For`);
  return problems;
}

describe("the deployed edge keeps MeshService, reflection and health Watch closed, and its bounds at the defaults or tighter", () => {
  test("the check itself refuses what npm start opens, a looser bound, a trust-everyone proxy list and a retired setting", () => {
    assert.deepEqual(edgeProblems({}), [], "the code's defaults pass");
    assert.equal(edgeProblems({ ...DEV_EDGE_EXPOSURE }).length, 3, "npm start's development edge is refused, each handler on its own");
    assert.deepEqual(edgeProblems({ GATEWAY_MESH_STATUS: "authenticated", GATEWAY_REFLECTION: "off", GATEWAY_HEALTH_WATCH: "off" }), []);
    assert.match(edgeProblems({ GATEWAY_MAX_STREAMS_PER_USER: "17" }).join(), /GATEWAY_MAX_STREAMS_PER_USER=17: above the default 16/);
    assert.deepEqual(edgeProblems({ GATEWAY_MAX_HEADER_BYTES: "4096", GATEWAY_IDLE_TIMEOUT_MS: "30000" }), [], "tighter is fine");
    assert.match(edgeProblems({ GATEWAY_TRUSTED_PROXIES: "10.0.0.0/8,::/0" }).join(), /trusts ::\/0/);
    assert.throws(() => edgeProblems({ GATEWAY_MESH_STATUS_PUBLIC: "true" }), /no longer read/);
  });

  test("the image sets none of these: its ENV is what compose and Kubernetes start from", () => {
    const envLines = read("Dockerfile")
      .replace(/\\\n/g, " ")
      .split("\n")
      .filter((line) => /^\s*ENV\s/.test(line));
    for (const variable of EDGE_VARIABLES) assert.ok(!envLines.some((line) => line.includes(variable)), `the Dockerfile sets ${variable}; this test reads only compose and the manifests`);
  });

  test("compose.yaml, and compose.yaml with compose.offline.yaml over it (what npm run compose:test runs)", () => {
    const base = parseCompose(read("compose.yaml")).services;
    const offline = parseCompose(read("compose.offline.yaml")).services;
    for (const document of [base, offline]) assert.equal(document.gateway?.env_file, undefined, "an env_file could set what this test does not read");
    const runs = {
      "compose.yaml": environmentOf(base.gateway),
      "compose.yaml + compose.offline.yaml": { ...environmentOf(base.gateway), ...environmentOf(offline.gateway) },
    };
    assert.ok(Object.keys(runs["compose.yaml"]).length > 0, "compose.yaml's gateway has an environment");
    for (const [run, env] of Object.entries(runs)) {
      assert.ok(!Object.values(env).some((value) => value.includes("${")), `${run}: a value is interpolated from the host's environment, which this test cannot see`);
      assert.deepEqual(edgeProblems(env), [], run);
      // No proxy stands in front of compose's published port: the TCP peer is the client.
      assert.equal(gatewayConfigOf(env).trustedProxies, "", `${run} trusts no proxy`);
    }
  });

  test("the rendered Kubernetes gateway, with and without the Linkerd component", async () => {
    for (const dir of ["mesh/linkerd", "mesh/linkerd/base"]) {
      const objects: KubeObject[] = await renderKustomize(path.join(root, dir));
      const gateways = objects.filter((object) => (object.kind === "Deployment" || object.kind === "StatefulSet") && object.spec.template.metadata.labels?.app === "gateway");
      assert.ok(gateways.length >= 1, `${dir} renders a gateway`);
      for (const gateway of gateways) {
        const container = gateway.spec.template.spec.containers.find((candidate: { name: string }) => candidate.name === "gateway");
        assert.ok(container, `${dir}: ${gateway.metadata.name} has a gateway container`);
        assert.equal(container.envFrom, undefined, `${dir}: ${gateway.metadata.name} takes envFrom, which could set what this test does not read`);
        const env: Record<string, string> = {};
        for (const entry of container.env ?? []) {
          if (entry.value !== undefined) env[entry.name] = String(entry.value);
          else assert.ok(!EDGE_VARIABLES.includes(entry.name), `${dir}: ${entry.name} comes from ${JSON.stringify(entry.valueFrom)}, which this test cannot read`);
        }
        assert.deepEqual(edgeProblems(env), [], `${dir}: ${gateway.metadata.name}`);
      }
    }
  });
});
