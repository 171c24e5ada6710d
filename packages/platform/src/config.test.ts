import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "vitest";
import { ConfigError, describeConfig, loadConfig, parseConsulAddress, serviceSettings } from "./config.js";
import { settings } from "./config-schemas.js";

const spec = {
  ...serviceSettings("DEMO", { port: 50099, metricsPort: 9499, dataDir: ".data/demo" }),
  batchSize: { env: "DEMO_BATCH_SIZE", doc: "Rows per batch.", schema: settings.positiveInt(), default: 50 },
  apiKey: { env: "DEMO_API_KEY", doc: "Key for the partner API.", schema: settings.nonEmpty(), secret: true },
};

describe("typed configuration", () => {
  test("defaults apply, the environment overrides them, and values come out typed", () => {
    const config = loadConfig(spec, { DEMO_PORT: "6000", DEMO_API_KEY: "k", DEMO_BATCH_SIZE: "7" });
    assert.equal(config.port, 6000);
    assert.equal(config.batchSize, 7);
    assert.equal(config.host, "127.0.0.1");
    assert.equal(config.databaseUrl, undefined);
    assert.equal(config.logLevel, "info");
  });

  test("an invalid value stops start-up with the variable named and what was expected", () => {
    assert.throws(
      () => loadConfig(spec, { DEMO_PORT: "eighty", DEMO_API_KEY: "k" }),
      (error: unknown) => error instanceof ConfigError && /DEMO_PORT \(port\): expected a port number; got "eighty"/.test(error.message),
    );
    assert.throws(() => loadConfig(spec, { DEMO_PORT: "70000", DEMO_API_KEY: "k" }), /DEMO_PORT \(port\): expected a port from 0 to 65535/);
    assert.throws(() => loadConfig(spec, { DEMO_LOG_LEVEL: "loud", DEMO_API_KEY: "k" }), /DEMO_LOG_LEVEL \(logLevel\): expected one of trace/);
    assert.throws(() => loadConfig(spec, { DEMO_DATABASE_URL: "not a url", DEMO_API_KEY: "k" }), /DEMO_DATABASE_URL \(databaseUrl\): expected a URL/);
  });

  test("the trace sampler and the OTLP protocol are OpenTelemetry's variables, with the specification's defaults: standard names, a ratio from 0 to 1", () => {
    const defaults = loadConfig(spec, { DEMO_API_KEY: "k" });
    assert.equal(defaults.tracesSampler, "parentbased_always_on");
    assert.equal(defaults.tracesSamplerArg, 1);
    const tenth = loadConfig(spec, { DEMO_API_KEY: "k", OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.1" });
    assert.equal(tenth.tracesSampler, "parentbased_traceidratio");
    assert.equal(tenth.tracesSamplerArg, 0.1);
    assert.throws(
      () => loadConfig(spec, { DEMO_API_KEY: "k", OTEL_TRACES_SAMPLER: "sometimes" }),
      /OTEL_TRACES_SAMPLER \(tracesSampler\): expected one of parentbased_always_on, parentbased_traceidratio, .*always_off; got "sometimes"/,
    );
    assert.throws(() => loadConfig(spec, { DEMO_API_KEY: "k", OTEL_TRACES_SAMPLER_ARG: "1.5" }), /OTEL_TRACES_SAMPLER_ARG \(tracesSamplerArg\): expected a number from 0 to 1; got "1.5"/);
    assert.equal(defaults.otlpProtocol, "http/protobuf");
    assert.equal(loadConfig(spec, { DEMO_API_KEY: "k", OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" }).otlpProtocol, "http/json");
    assert.throws(
      () => loadConfig(spec, { DEMO_API_KEY: "k", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }),
      /OTEL_EXPORTER_OTLP_PROTOCOL \(otlpProtocol\): expected http\/protobuf or http\/json \(OTLP over gRPC is not offered\); got "grpc"/,
    );
    assert.throws(() => loadConfig(spec, { DEMO_API_KEY: "k", OTEL_TRACES_SAMPLER_ARG: "half" }), /OTEL_TRACES_SAMPLER_ARG \(tracesSamplerArg\): expected a number from 0 to 1; got "half"/);
  });

  test("every bad key is reported at once, and secrets are never echoed", () => {
    try {
      loadConfig(spec, { DEMO_BATCH_SIZE: "-3", DEMO_DATABASE_URL: "postgres://user:hunter2@/", DEMO_PORT: "x" });
      assert.fail("expected a ConfigError");
    } catch (error) {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.problems.length, 4, error.message);
      assert.match(error.message, /DEMO_API_KEY \(apiKey\): required/);
      assert.match(error.message, /DEMO_BATCH_SIZE \(batchSize\): expected a number above 0; got "-3"/);
      assert.doesNotMatch(error.message, /hunter2/);
    }
  });

  test("a secret may come from <VAR>_FILE; a plain setting may not, and an unreadable or doubly-set secret is named", () => {
    const dir = mkdtempSync(join(tmpdir(), "meshwork-config-"));
    const keyFile = join(dir, "api-key");
    writeFileSync(keyFile, "s3cret\n");
    const urlFile = join(dir, "db-url");
    writeFileSync(urlFile, "postgres://demo:pw@db:5432/demo");
    const config = loadConfig(spec, { DEMO_API_KEY_FILE: keyFile, DEMO_DATABASE_URL_FILE: urlFile, DEMO_PORT_FILE: keyFile });
    assert.equal(config.apiKey, "s3cret");
    assert.equal(config.databaseUrl, "postgres://demo:pw@db:5432/demo");
    assert.equal(config.port, 50099, "PORT is not a secret: DEMO_PORT_FILE is ignored");
    assert.throws(() => loadConfig(spec, { DEMO_API_KEY_FILE: join(dir, "missing") }), /DEMO_API_KEY_FILE \(apiKey\): cannot read .*missing: ENOENT/);
    assert.throws(() => loadConfig(spec, { DEMO_API_KEY: "k", DEMO_API_KEY_FILE: keyFile }), /DEMO_API_KEY \(apiKey\): set both DEMO_API_KEY and DEMO_API_KEY_FILE/);
  });

  test("a documented table lists every variable", () => {
    const table = describeConfig(spec);
    for (const setting of Object.values(spec)) assert.ok(table.includes(`\`${setting.env}\``), setting.env);
    assert.match(table, /\| `DEMO_API_KEY` \| required \|/);
  });

  test("Consul addresses parse from host:port or URL", () => {
    assert.deepEqual(parseConsulAddress("127.0.0.1:8500"), { host: "127.0.0.1", port: 8500, secure: false });
    assert.deepEqual(parseConsulAddress("https://consul.internal:8501"), { host: "consul.internal", port: 8501, secure: true });
    assert.deepEqual(parseConsulAddress("[::1]:8500"), { host: "::1", port: 8500, secure: false });
    assert.throws(() => parseConsulAddress("ftp://x"), /CONSUL_HTTP_ADDR: expected http or https/);
  });
});
