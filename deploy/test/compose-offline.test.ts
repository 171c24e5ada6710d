/**
 * compose.offline.yaml, checked without Docker: it changes only what the
 * offline run must (stand-in images, static discovery in Consul's place, the
 * live settings file), every image it names is a stand-in scripts/standins.ts
 * builds, static addresses cover the call graph, and the seed's conversion of
 * deploy/consul/kv.json gives the same live settings Kubernetes mounts.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, test } from "vitest";
import { parseAllDocuments } from "yaml";
import { STANDINS, offlineTag } from "../../scripts/standins.js";
import { CALL_GRAPH, SERVICE_PORTS } from "../call-graph.js";
import { parseCompose } from "../compose-schema.js";
import { appServiceOf } from "../graph-checks.js";
import { settingsOf } from "./config-specs.js";

const root = path.resolve(import.meta.dirname, "../..");
const read = (file: string) => readFileSync(path.join(root, file), "utf8");
const base = parseCompose(read("compose.yaml")).services as Record<string, any>;
const offlineText = read("compose.offline.yaml");
const offline = parseCompose(offlineText).services as Record<string, any>;

describe("compose.offline.yaml", () => {
  test("overrides only services compose.yaml has", () => {
    assert.deepEqual(
      Object.keys(offline).filter((name) => !(name in base)),
      [],
    );
  });

  test("every image compose.yaml pulls is replaced by a stand-in that scripts/standins.ts builds", () => {
    const pulled = Object.entries(base).filter(([, service]) => service.image && !service.build);
    assert.ok(pulled.length >= 5);
    const standinTags = new Set(STANDINS.map((standin) => offlineTag(standin.name)));
    for (const [name] of pulled) {
      assert.ok(offline[name]?.image, `${name}: compose.yaml pulls ${base[name].image}; the offline run has no stand-in for it`);
      assert.ok(standinTags.has(offline[name].image), `${name}: ${offline[name].image} is not a stand-in scripts/standins.ts builds`);
    }
  });

  test("every built service builds on the Node stand-in, and the Dockerfile takes the base as a build argument", () => {
    for (const [name] of Object.entries(base).filter(([, service]) => service.build)) {
      assert.equal(offline[name]?.build?.args?.NODE_IMAGE, offlineTag("node"), name);
    }
    assert.match(read("Dockerfile"), /^ARG NODE_IMAGE=node:\d+\.\d+\.\d+-bookworm-slim$/m);
    assert.match(read("Dockerfile"), /^FROM \$\{NODE_IMAGE\} AS base$/m);
  });

  test("no service talks to Consul, and static addresses cover every edge of the call graph", () => {
    for (const [name, service] of Object.entries(base).filter(([name]) => appServiceOf(name))) {
      const app = appServiceOf(name)!;
      const env = { ...service.environment, ...offline[name]?.environment };
      assert.equal(env.CONSUL_HTTP_ADDR, "", `${name} still has CONSUL_HTTP_ADDR`);
      for (const edge of CALL_GRAPH.filter((edge) => edge.caller === app)) {
        const variable = `${app.toUpperCase()}_${edge.callee.toUpperCase()}_ADDR`;
        assert.ok(settingsOf(app).has(variable), `${variable} is not a setting of ${app}`);
        const targets = String(env[variable] ?? "").split(",");
        const instances = Object.keys(base).filter((candidate) => appServiceOf(candidate) === edge.callee);
        assert.deepEqual(targets.sort(), instances.map((instance) => `${instance}:${SERVICE_PORTS[edge.callee].grpc}`).sort(), `${name} -> ${edge.callee}`);
      }
      for (const [key, value] of Object.entries(env)) {
        if (key.endsWith("_LIVE_CONFIG_FILE")) {
          assert.ok(settingsOf(app).has(key), `${key} is not a setting of ${app}`);
          assert.ok(
            (offline[name].volumes ?? []).some((volume: string) => volume.startsWith("live-settings:") && String(value).startsWith(volume.split(":")[1]!)),
            `${name} reads ${String(value)} but does not mount the live settings volume there`,
          );
        }
      }
    }
  });

  test("every setting in it is commented with why", () => {
    // Each service block and anchor carries a comment line: the file explains itself.
    const document = parseAllDocuments(offlineText)[0]!;
    assert.equal(document.errors.length, 0);
    for (const name of ["postgres", "rabbitmq", "prometheus", "jaeger", "consul", "consul-seed"]) {
      const block = offlineText.slice(offlineText.indexOf(`\n  ${name}:\n`));
      assert.match(block.split("\n")[2] ?? "", /^\s+#/, `${name}'s override starts without a comment saying why`);
    }
  });
});

describe("deploy/compose/kv-to-live.mjs (consul-seed's stand-in)", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "kv-to-live-"));
  const convert = (kv: unknown): { code: number; live?: Record<string, unknown>; output: string } => {
    const source = path.join(dir, "kv.json");
    const target = path.join(dir, "live.json");
    rmSync(target, { force: true });
    writeFileSync(source, JSON.stringify(kv));
    try {
      const output = execFileSync(process.execPath, [path.join(root, "deploy/compose/kv-to-live.mjs"), source, target], { encoding: "utf8", stdio: "pipe" });
      return { code: 0, live: JSON.parse(readFileSync(target, "utf8")), output };
    } catch (error) {
      assert.equal(existsSync(target), false, "a refused seed wrote a live settings file");
      return { code: (error as { status: number }).status, output: String((error as { stderr: string }).stderr) };
    }
  };

  test("gives the live settings the Kubernetes ConfigMaps mount, from the Consul seed compose.yaml loads", () => {
    const { code, live } = convert(JSON.parse(read("deploy/consul/kv.json")));
    assert.equal(code, 0);
    for (const service of ["gateway", "payments"]) {
      const manifests = parseAllDocuments(read(`mesh/linkerd/base/services/${service}.yaml`)).map((document) => document.toJSON());
      const configMap = manifests.find((manifest) => manifest?.kind === "ConfigMap" && manifest.metadata.name === `${service}-live`);
      const mounted = JSON.parse(configMap.data["live.json"]) as Record<string, unknown>;
      for (const [key, value] of Object.entries(mounted)) assert.deepEqual(live![key], value, `${key}: the compose seed and the ConfigMap disagree`);
    }
  });

  test("keeps non-JSON values as text and refuses keys outside meshwork/, writing nothing", () => {
    const encode = (text: string) => Buffer.from(text).toString("base64");
    assert.deepEqual(convert([{ key: "meshwork/x/mode", flags: 0, value: encode("fast") }]).live, { "x/mode": "fast" });
    const refused = convert([{ key: "other/x", flags: 0, value: encode("1") }]);
    assert.equal(refused.code, 1);
    assert.match(refused.output, /key "other\/x" is not under meshwork\//);
    assert.equal(convert({ key: "meshwork/x" }).code, 1);
  });
});
