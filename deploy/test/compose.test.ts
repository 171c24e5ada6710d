import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, test } from "vitest";
import { parse } from "yaml";
import { Healthcheck } from "dockerfile-ast";
import { LIVE_DEFAULTS, LIVE_KEYS as GATEWAY_LIVE_KEYS } from "../../services/gateway/src/live-settings.js";
import { LIVE_KEYS as PAYMENTS_LIVE_KEYS } from "../../services/payments/src/live-settings.js";
import { settingsOf } from "./config-specs.js";
import { APP_SERVICES, SERVICE_PORTS } from "../call-graph.js";
import { createComposeValidator, parseCompose } from "../compose-schema.js";
import { appServiceOf } from "../graph-checks.js";
import { parseDockerfile } from "../dockerfile-rules.js";

const root = path.resolve(import.meta.dirname, "../..");
const read = (file: string) => readFileSync(path.join(root, file), "utf8");
const composeText = read("compose.yaml");
const compose = parseCompose(composeText);
const services = compose.services as Record<string, any>;
const appEntries = Object.entries(services).filter(([name]) => appServiceOf(name) !== undefined);

/** Host ports compose publishes, as "service host-ip:port". */
function publishedPorts(document: { services: Record<string, any> }): string[] {
  const published: string[] = [];
  for (const [name, service] of Object.entries(document.services)) {
    for (const port of service.ports ?? []) {
      const text = String(port);
      const parts = text.replace(/\/\w+$/, "").split(":");
      const host = parts.length === 3 ? `${parts[0]}:${parts[1]}` : parts.length === 2 ? `0.0.0.0:${parts[0]}` : `0.0.0.0:(random)`;
      published.push(`${name} ${host}`);
    }
  }
  return published.sort();
}

describe("compose.yaml", () => {
  const validate = createComposeValidator();

  test("validates against the Compose Specification schema", () => {
    assert.deepEqual(validate(compose), []);
  });

  test("the schema check refuses a compose file with a misspelt key or a bad duration", () => {
    const broken = parseCompose(composeText);
    broken.services.catalog.healthchek = broken.services.catalog.healthcheck;
    broken.services.identity.healthcheck.interval = "ten seconds";
    const errors = validate(broken);
    assert.ok(
      errors.some((error) => error.includes("/services/catalog") && error.includes("healthchek")),
      errors.join("\n"),
    );
    assert.ok(
      errors.some((error) => error.includes("/services/identity/healthcheck/interval")),
      errors.join("\n"),
    );
  });

  test("every service of the mesh runs, with two notifications replicas, each health-checked through gRPC health", () => {
    assert.deepEqual([...new Set(appEntries.map(([name]) => appServiceOf(name)))].sort(), [...APP_SERVICES].sort());
    assert.deepEqual(
      appEntries
        .map(([name]) => name)
        .filter((name) => name.startsWith("notifications"))
        .sort(),
      ["notifications-1", "notifications-2"],
    );
    for (const [name, service] of appEntries) {
      assert.ok(service.healthcheck?.test?.includes("scripts/dist/health-probe.js"), `${name} has a gRPC health check`);
    }
  });

  test("every service's health check is the image's own HEALTHCHECK: the same command and timings", () => {
    const stage = parseDockerfile(read("Dockerfile")).stages.find((candidate) => candidate.name === "service")!;
    const healthcheck = stage.instructions.filter((instruction): instruction is Healthcheck => instruction instanceof Healthcheck).at(-1)!;
    const command = JSON.parse(healthcheck.getArgumentsContent()!.replace(/^[\s\S]*?CMD\s*/, "")) as string[];
    const flags = Object.fromEntries(healthcheck.getFlags().map((flag) => [flag.getName().replace("-", "_"), flag.getValue()]));
    assert.deepEqual(Object.keys(flags).sort(), ["interval", "retries", "start_period", "timeout"]);
    for (const [name, service] of appEntries) {
      const { test: composeTest, ...timings } = service.healthcheck;
      assert.deepEqual(composeTest, ["CMD", ...command], `${name}'s health check command`);
      assert.deepEqual(Object.fromEntries(Object.entries(timings).map(([key, value]) => [key, String(value)])), flags, `${name}'s health check timings`);
    }
  });

  test("every long-running container has a health check; only the one-shots (KV seed, secrets) have none", () => {
    const without = Object.entries(services)
      .filter(([, service]) => !service.healthcheck || service.healthcheck.disable === true)
      .map(([name]) => name);
    assert.deepEqual(without.sort(), ["consul-seed", "secrets"]);
    assert.equal(services["consul-seed"].restart, "no");
    assert.equal(services.secrets.restart, "no");
  });

  test("only the gateway and the RabbitMQ, Consul, Jaeger and Prometheus UIs are published, the UIs on loopback only", () => {
    assert.deepEqual(publishedPorts(compose), ["consul 127.0.0.1:8500", "gateway 0.0.0.0:8080", "jaeger 127.0.0.1:16686", "prometheus 127.0.0.1:9090", "rabbitmq 127.0.0.1:15672"]);
  });

  test("every third-party image is pinned to an exact version, and the services use their own built images", () => {
    for (const [name, service] of Object.entries(services)) {
      if (name === "secrets") {
        // Runs a service image's compiled scripts/secrets-init.js: built like identity, nothing to pull.
        assert.deepEqual({ image: service.image, build: service.build }, { image: services.identity.image, build: services.identity.build });
        continue;
      }
      if (appServiceOf(name)) {
        assert.match(service.image, /^meshwork\/[a-z]+:dev$/, `${name} is built here`);
        assert.ok(service.build, `${name} has a build`);
      } else {
        assert.match(service.image, /^[a-z0-9./-]+:v?\d+\.\d+(\.\d+)?(-[a-z0-9-]+)?$/, `${name}'s image ${service.image} is pinned`);
      }
    }
  });

  test("the README's Compose section tells where each published port is to be opened", () => {
    const readme = read("README.md");
    const section = readme.slice(readme.indexOf("## Compose"), readme.indexOf("## Testing"));
    assert.match(section, /docker compose up --build/);
    for (const published of publishedPorts(compose)) {
      const port = published.split(":").at(-1)!;
      assert.match(section, new RegExp(`http://localhost:${port}\\b`), `the README names ${published}`);
    }
  });

  test("each service builds its own image target, binds 0.0.0.0, advertises its compose name and exports traces to Jaeger", () => {
    for (const [name, service] of appEntries) {
      const app = appServiceOf(name)!;
      const prefix = app.toUpperCase();
      assert.equal(service.build.args.SERVICE, app, `${name} builds SERVICE=${app}`);
      assert.equal(service.build.target, app === "gateway" ? "gateway" : "service", `${name}'s build target`);
      const env = service.environment as Record<string, string>;
      assert.equal(env[`${prefix}_HOST`], "0.0.0.0", `${name} binds every interface`);
      assert.equal(env[`${prefix}_PORT`], String(SERVICE_PORTS[app].grpc), `${name}'s port`);
      assert.equal(env[`${prefix}_METRICS_PORT`], String(SERVICE_PORTS[app].metrics), `${name}'s metrics port`);
      if (app !== "gateway") assert.equal(env[`${prefix}_ADVERTISE_HOST`], name, `${name} registers its own compose name in Consul`);
      assert.equal(env.CONSUL_HTTP_ADDR, "consul:8500");
      assert.equal(env.OTEL_TRACES_EXPORTER, "otlp");
      assert.equal(env.OTEL_EXPORTER_OTLP_ENDPOINT, "http://jaeger:4318");
      assert.equal(env.OTEL_SERVICE_NAME, app);
    }
  });

  test("every service setting compose sets is one the service reads (a misspelt variable would be silently ignored)", () => {
    for (const [name, service] of appEntries) {
      const app = appServiceOf(name)!;
      const known = settingsOf(app);
      const own = Object.keys(service.environment).filter((key) => key.startsWith(`${app.toUpperCase()}_`) || key.startsWith("CONSUL_"));
      assert.deepEqual(
        own.filter((key) => !known.has(key)),
        [],
        `${name} sets variables its config does not define`,
      );
    }
  });

  test("each service reads its database URL, AMQP URL and Consul token from files in its own secrets volume, mounted read-only", () => {
    const init = read("mesh/linkerd/base/data/postgres-init.sh");
    for (const [name, service] of appEntries) {
      const app = appServiceOf(name)!;
      const prefix = app.toUpperCase();
      const env = service.environment as Record<string, string>;
      assert.deepEqual(service.volumes, [`secrets-${app}:/run/secrets/meshwork:ro`], `${name} mounts its own secrets and nothing else`);
      assert.equal(env.CONSUL_HTTP_TOKEN_FILE, "/run/secrets/meshwork/consul-token");
      assert.equal(env[`${prefix}_DATABASE_URL`], undefined, `${name} has no database URL in its environment`);
      assert.equal(env[`${prefix}_AMQP_URL`], undefined, `${name} has no AMQP URL in its environment`);
      if (app === "gateway") {
        assert.equal(env[`${prefix}_DATABASE_URL_FILE`], undefined, "the gateway is stateless");
        continue;
      }
      assert.equal(env[`${prefix}_DATABASE_URL_FILE`], "/run/secrets/meshwork/database-url");
      assert.equal(env[`${prefix}_AMQP_URL_FILE`], app === "orders" || app === "notifications" ? "/run/secrets/meshwork/amqp-url" : undefined, `${name}'s AMQP URL`);
      assert.match(init, new RegExp(`^for service in .*\\b${app}\\b.*; do$`, "m"), `postgres-init.sh creates meshwork_${app}`);
      assert.equal(services[name].depends_on.secrets?.condition, "service_completed_successfully");
    }
    assert.match(init, /CREATE ROLE :"role" LOGIN PASSWORD :'password';/);
    assert.match(init, /^ {2}echo "host all \$\{POSTGRES_USER:-postgres\} all reject"$/m);
  });

  test("the secrets step mounts every consumer's volume and nothing else, has no network, and each volume has exactly one consumer", () => {
    const secrets = services.secrets;
    assert.equal(secrets.network_mode, "none");
    const mounts = (secrets.volumes as string[]).map((volume) => volume.split(":"));
    assert.ok(mounts.every(([volume, target]) => volume === `secrets-${target!.replace("/secrets/", "")}`));
    const consumers = new Map<string, string[]>();
    for (const [name, service] of Object.entries(services)) {
      if (name === "secrets") continue;
      for (const volume of (service.volumes ?? []) as string[]) {
        const [source, target, mode] = volume.split(":");
        if (!source!.startsWith("secrets-")) continue;
        assert.equal(`${target}:${mode}`, "/run/secrets/meshwork:ro", `${name} mounts ${source} read-only at /run/secrets/meshwork`);
        consumers.set(source!, [...(consumers.get(source!) ?? []), name.replace(/-\d+$/, "")]);
      }
    }
    assert.deepEqual([...consumers.keys()].sort(), mounts.map(([volume]) => volume).sort());
    for (const [volume, names] of consumers) {
      const distinct = [...new Set(names)];
      // consul-seed bootstraps Consul's ACLs with the tokens consul holds.
      assert.deepEqual(
        distinct.filter((name) => name !== "consul-seed"),
        [volume.replace("secrets-", "")],
        `${volume} is mounted by ${names.join(", ")}`,
      );
    }
  });

  test("no password, token or credential URL is written in compose.yaml, compose.offline.yaml, the stand-ins or the Kubernetes base", () => {
    const files = [
      "compose.yaml",
      "compose.offline.yaml",
      "mesh/linkerd/base/kustomization.yaml",
      "mesh/linkerd/base/data/postgres-init.sh",
      "mesh/linkerd/base/data/postgres.yaml",
      "mesh/linkerd/base/data/rabbitmq.yaml",
      ...["identity", "catalog", "orders", "payments", "notifications", "gateway"].map((app) => `mesh/linkerd/base/services/${app}.yaml`),
      "deploy/standins/postgres/docker-entrypoint.sh",
      "deploy/standins/rabbitmq/docker-entrypoint.sh",
    ];
    for (const file of files) {
      const text = read(file);
      assert.doesNotMatch(text, /[a-z]+:\/\/[^\s/:@]+:[^\s@$]+@/i, `${file} holds a URL with a password`);
      assert.doesNotMatch(
        text,
        /^\s*(POSTGRES_PASSWORD|RABBITMQ_DEFAULT_PASS|RABBITMQ_DEFAULT_USER|CONSUL_HTTP_TOKEN|[A-Z_]*(PASSWORD|_PASS|_TOKEN|_KEY)):\s*\S/m,
        `${file} sets a secret variable directly`,
      );
      assert.doesNotMatch(text, /PASSWORD\s+'[^':]+'/, `${file} holds a SQL password literal`);
      assert.doesNotMatch(text, /^\s*literals:/m, `${file} generates a Secret from literals`);
    }
    // And the check itself finds what it is meant to.
    assert.match("X_URL: postgres://a:b@c/d", /[a-z]+:\/\/[^\s/:@]+:[^\s@$]+@/i);
    assert.doesNotMatch("url: postgres://meshwork_orders:$PASSWORD@postgres", /[a-z]+:\/\/[^\s/:@]+:[^\s@$]+@/i);
  });

  test("Prometheus scrapes every service instance's metrics port (promtool checks the file: compose.int.test.ts)", () => {
    const config = parse(read("deploy/prometheus/prometheus.yml"));
    const targets = config.scrape_configs.flatMap((job: any) => job.static_configs.flatMap((group: any) => group.targets)).sort();
    const expected = appEntries.map(([name]) => `${name}:${SERVICE_PORTS[appServiceOf(name)!].metrics}`).sort();
    assert.deepEqual(targets, expected);
  });

  test("the Consul KV seed holds every live setting with a valid value, under the prefix the services read", () => {
    const seed = JSON.parse(read("deploy/consul/kv.json")) as { key: string; flags: number; value: string }[];
    const keys = [...Object.values(GATEWAY_LIVE_KEYS), ...Object.values(PAYMENTS_LIVE_KEYS)].map((key) => `meshwork/${key}`).sort();
    assert.deepEqual(seed.map((entry) => entry.key).sort(), keys);
    const values = Object.fromEntries(seed.map((entry) => [entry.key, JSON.parse(Buffer.from(entry.value, "base64").toString("utf8")) as unknown]));
    assert.equal(values[`meshwork/${GATEWAY_LIVE_KEYS.perUserRps}`], LIVE_DEFAULTS.perUserRps);
    assert.equal(values[`meshwork/${GATEWAY_LIVE_KEYS.perAddressBurst}`], LIVE_DEFAULTS.perAddressBurst);
    for (const [key, value] of Object.entries(values)) assert.equal(typeof value, "number", `${key} is a JSON number`);
    // Mounted into the one-shot seed container, whose bootstrap imports it after setting up the ACLs.
    assert.ok(services["consul-seed"].volumes.some((volume: string) => volume.startsWith("./deploy/consul/kv.json:")));
    assert.deepEqual(services["consul-seed"].command, ["node", "/seed/acl-bootstrap.mjs"]);
  });
});
