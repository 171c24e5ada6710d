/** The compiled service and probe (scripts/build-service.ts), built into scratch directories and run on plain node, as the image runs them. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, test } from "vitest";
import { buildService, type BuiltEntry } from "./build-service.js";

const root = path.resolve(import.meta.dirname, "..");
const scratch = `.build-test-${process.pid}`;
// One level below the package, as services/S/dist is: what the sources find relative to themselves must not move.
const outDir = (service: string) => path.join(root, "services", service, scratch);
const probeOutDir = path.join(root, "scripts", scratch);
const built: Record<string, { main: BuiltEntry; probe: BuiltEntry; secrets: BuiltEntry }> = {};

beforeAll(async () => {
  for (const service of ["catalog", "gateway"]) built[service] = await buildService(service, { serviceOutDir: outDir(service), probeOutDir });
}, 60_000);
afterAll(() => {
  for (const dir of [outDir("catalog"), outDir("gateway"), probeOutDir]) rmSync(dir, { recursive: true, force: true });
});

/** The package an import names: "@bufbuild/protobuf/wkt" is @bufbuild/protobuf. */
const packageOf = (specifier: string) =>
  specifier
    .split("/")
    .slice(0, specifier.startsWith("@") ? 2 : 1)
    .join("/");
const importsOf = (entry: BuiltEntry) => Object.values(entry.metafile.outputs).flatMap((output) => output.imports);
const manifest = (file: string) => JSON.parse(readFileSync(path.join(root, file), "utf8")) as Record<string, Record<string, string> | undefined>;
const declared = (file: string) => Object.keys({ ...manifest(file).dependencies, ...manifest(file).optionalDependencies });

/** Plain node (no tsx loader in NODE_OPTIONS), its output gathered, judged by its exit code. */
function plainNode(args: readonly string[], env: Record<string, string>, cwd = root) {
  const child = spawn(process.execPath, args, { cwd, env: { ...process.env, NODE_OPTIONS: "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk));
  const done = once(child, "close").then(([code]) => ({ code: code as number | null, output }));
  return { child, done };
}

/** Starts a compiled service and resolves with the port it logs in its "<name> serving" line. */
async function startCompiled(file: string, name: string, env: Record<string, string>, cwd: string) {
  const child = spawn(process.execPath, [file], { cwd, env: { ...process.env, NODE_OPTIONS: "", ...env }, stdio: ["ignore", "pipe", "inherit"] });
  const lines: Record<string, unknown>[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`${name} exited with ${code} before serving`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      lines.push(entry);
      if (entry.msg === `${name} serving`) resolve(entry.port as number);
    });
  });
  return { child, port, lines };
}

describe("the compiled service", () => {
  test("bundles the workspace packages and migrations in, and imports only npm packages the service's production install has", () => {
    const { main } = built.catalog!;
    const inputs = Object.keys(main.metafile.inputs);
    for (const source of ["services/catalog/src/main.ts", "services/catalog/migrations/index.ts", "packages/platform/src/index.ts"]) assert.ok(inputs.includes(source), `${source} is compiled in`);
    assert.ok(inputs.some((input) => input.startsWith("packages/contracts/src/gen/")));
    const external = importsOf(main).filter((entry) => entry.external && !entry.path.startsWith("node:"));
    assert.ok(external.length > 0);
    assert.deepEqual(
      external.filter((entry) => entry.path.startsWith("@meshwork/") || entry.path.startsWith(".")),
      [],
    );
    const installable = new Set(["services/catalog/package.json", "packages/platform/package.json", "packages/contracts/package.json"].flatMap(declared));
    assert.deepEqual(
      [...new Set(external.map((entry) => packageOf(entry.path)))].filter((name) => !installable.has(name)),
      [],
    );
    assert.doesNotMatch(readFileSync(main.file, "utf8"), /from "@meshwork\//);
  });

  test("loads PGlite only by a dynamic import, and nothing of tsx, esbuild or the test kit", () => {
    const imports = importsOf(built.catalog!.main);
    const embedded = imports.filter((entry) => ["@electric-sql/pglite", "knex-pglite"].includes(packageOf(entry.path)));
    assert.deepEqual([...new Set(embedded.map((entry) => `${entry.path} ${entry.kind}`))].sort(), ["@electric-sql/pglite dynamic-import", "knex-pglite dynamic-import"]);
    for (const entry of [built.catalog!, built.gateway!].flatMap(({ main, probe }) => [...importsOf(main), ...importsOf(probe)])) {
      assert.ok(!["tsx", "esbuild", "vitest", "@meshwork/testing"].includes(packageOf(entry.path)), `imports ${entry.path}`);
    }
  });

  test("runs on plain node: turns SERVING for the compiled probe, and stops cleanly on SIGTERM", async (t) => {
    const env = { CATALOG_HOST: "127.0.0.1", CATALOG_PORT: "0", CATALOG_METRICS_PORT: "0", CATALOG_DATA_DIR: "memory://", CATALOG_LOG_LEVEL: "info" };
    const catalog = await startCompiled(built.catalog!.main.file, "catalog", env, root);
    t.onTestFinished(() => void catalog.child.kill("SIGKILL"));
    const probe = await plainNode([built.catalog!.probe.file], { MESHWORK_SERVICE: "catalog", CATALOG_PORT: String(catalog.port) }).done;
    assert.equal(probe.code, 0, probe.output);
    assert.match(probe.output, /: SERVING/);
    const exited = once(catalog.child, "exit");
    catalog.child.kill("SIGTERM");
    assert.equal(((await exited) as [number | null])[0], 0);
  });

  test("the gateway finds a relative GATEWAY_WEB_DIR from the repository root, whatever the working directory, as from its sources", async (t) => {
    const web = path.join(probeOutDir, "web");
    mkdirSync(web, { recursive: true });
    writeFileSync(path.join(web, "index.html"), "<!doctype html><title>compiled gateway</title>\n");
    const env = { GATEWAY_HOST: "127.0.0.1", GATEWAY_PORT: "0", GATEWAY_METRICS_PORT: "0", GATEWAY_WEB_DIR: path.relative(root, web), GATEWAY_LOG_LEVEL: "info" };
    const gateway = await startCompiled(built.gateway!.main.file, "gateway", env, tmpdir());
    t.onTestFinished(() => void gateway.child.kill("SIGKILL"));
    const response = await fetch(`http://127.0.0.1:${gateway.port}/`);
    assert.equal(response.status, 200);
    assert.match(await response.text(), /compiled gateway/);
  });
});

describe("the compiled probe", () => {
  test("knows each service's default port without loading its config (built in)", async () => {
    // Nothing listens on catalog's default port here; the address in the error shows which port the probe chose.
    const result = await plainNode([built.catalog!.probe.file], { MESHWORK_SERVICE: "catalog", CATALOG_PORT: "", MESHWORK_HEALTH_PROBE_TIMEOUT_MS: "200" }).done;
    assert.equal(result.code, 1, result.output);
    assert.match(result.output, /health probe failed: 127\.0\.0\.1:50052\b/);
    assert.deepEqual(
      Object.keys(built.catalog!.probe.metafile.inputs).filter((input) => input.includes("/config")),
      [],
    );
  });

  test("refuses a name that is not a service", async () => {
    await assert.rejects(buildService("../web"), /"\.\.\/web" is not a service/);
  });
});

describe("the compiled secrets step (compose's one-shot `secrets` service)", () => {
  test("imports nothing but Node's own modules, and on plain node fills every consumer's folder, keeping the values on a second run", async (t) => {
    assert.deepEqual(
      importsOf(built.catalog!.secrets).filter((entry) => !entry.path.startsWith("node:")),
      [],
    );
    const volumes = path.join(tmpdir(), `meshwork-secrets-${process.pid}`);
    t.onTestFinished(() => rmSync(volumes, { recursive: true, force: true }));
    for (const consumer of ["postgres", "rabbitmq", "consul", "gateway", "identity", "catalog", "orders", "payments", "notifications"]) mkdirSync(path.join(volumes, consumer), { recursive: true });
    const first = await plainNode([built.catalog!.secrets.file, volumes], {}).done;
    assert.equal(first.code, 0, first.output);
    assert.match(first.output, /^secrets: 18 generated/);
    const url = readFileSync(path.join(volumes, "orders", "database-url"), "utf8");
    assert.match(url, /^postgres:\/\/meshwork_orders:[A-Za-z0-9_-]{43}@postgres:5432\/meshwork_orders$/);
    const second = await plainNode([built.catalog!.secrets.file, volumes], {}).done;
    assert.match(second.output, /^secrets: 0 generated, 18 kept/);
    assert.equal(readFileSync(path.join(volumes, "orders", "database-url"), "utf8"), url);
    // Never a value on its output.
    assert.ok(!first.output.includes(url.split(":")[2]!.split("@")[0]!));
  });
});
