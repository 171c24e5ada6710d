import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { describe, test } from "vitest";

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, "..", "..", "..");

/** The packages a domain file must not drag in: the platform's runtime. */
const HEAVY = ["knex", "amqplib", "@grpc/grpc-js", "@opentelemetry/"];

// Registered after tsx, so it runs first in the chain and sees each final URL.
// Every module the child's import graph resolves is appended to a file (the
// hooks run on their own thread; a file is the simplest way out of it).
const hooks = `
import { appendFileSync } from "node:fs";
let file;
export function initialize(data) { file = data.file; }
export async function resolve(specifier, context, nextResolve) {
  const result = await nextResolve(specifier, context);
  appendFileSync(file, result.url + "\\n");
  return result;
}`;
const registerHooks = (file: string): string =>
  `data:text/javascript,${encodeURIComponent(
    `import { register } from "node:module"; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)}, import.meta.url, { data: { file: ${JSON.stringify(file)} } });`,
  )}`;

/**
 * Imports `specifier` in a fresh Node process (as a service does, through
 * tsx) and returns every module it loaded: each URL the ESM loader resolved,
 * plus the CommonJS module cache (packages that require() one another).
 */
async function modulesLoadedBy(specifier: string): Promise<string[]> {
  const dir = await mkdtemp(path.join(tmpdir(), "meshwork-imports-"));
  try {
    const file = path.join(dir, "resolved.txt");
    const script = `import { createRequire } from "node:module";
await import(${JSON.stringify(specifier)});
process.stdout.write(JSON.stringify(Object.keys(createRequire(import.meta.url).cache)));`;
    const { stdout } = await run(process.execPath, ["--import", "tsx", "--import", registerHooks(file), "--input-type=module", "-e", script], { cwd: root });
    const resolved = (await readFile(file, "utf8")).split("\n").filter(Boolean);
    return [...resolved, ...(JSON.parse(stdout) as string[])].map((entry) => entry.replaceAll("\\", "/"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const heavyIn = (modules: readonly string[]): string[] => HEAVY.filter((name) => modules.some((module) => module.includes(`/node_modules/${name}`)));

describe("the errors entry point", () => {
  test("@meshwork/platform/errors loads none of knex, amqplib, grpc-js or OpenTelemetry, unlike the package's main entry", async () => {
    const [leaf, barrel] = await Promise.all([modulesLoadedBy("@meshwork/platform/errors"), modulesLoadedBy("@meshwork/platform")]);
    assert.ok(
      leaf.some((module) => module.endsWith("/packages/platform/src/errors.ts")),
      `the leaf itself was seen loading:\n${leaf.join("\n")}`,
    );
    assert.deepEqual(heavyIn(leaf), [], `loaded by @meshwork/platform/errors:\n${leaf.join("\n")}`);
    // The same probe on the barrel sees all four: the check above can fail.
    assert.deepEqual(heavyIn(barrel), HEAVY);
  });
});
