/**
 * The contracts in proto/ are linted, generate exactly the committed
 * TypeScript, and cannot break the released API (api/released.binpb) without
 * this file failing. Every check runs the real buf binary (offline).
 */
import assert from "node:assert/strict";
import { cp, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import { runProcess, tempDir, type RunResult } from "./support/run-process.js";

const root = path.resolve(import.meta.dirname, "..");
const bin = path.join(root, "node_modules", ".bin");
const buf = path.join(bin, "buf");
const releasedImage = path.join(root, "api", "released.binpb");
/** The `out` of buf.gen.yaml: generated TypeScript, committed. */
const generatedDir = "packages/contracts/src/gen";
const catalogProto = "proto/shop/catalog/v1/catalog.proto";

const TEST_TIMEOUT_MS = 90_000;
const BUF_TIMEOUT_MS = 60_000;
/** Exit code of `buf breaking` (and `buf lint`) when it found violations, as opposed to 1 for an error. */
const BUF_FOUND_VIOLATIONS = 100;

/** Runs buf with protoc-gen-es on the PATH, as `npm run` would. */
const runBuf = (args: readonly string[], cwd = root): Promise<RunResult> =>
  runProcess(buf, args, {
    cwd,
    timeoutMs: BUF_TIMEOUT_MS,
    env: { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ""}`, BUF_LOG_FORMAT: "text" },
  });

const output = (result: RunResult): string => `exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`;

interface BreakingFinding {
  readonly path: string;
  readonly type: string;
  readonly message: string;
}

/** `buf breaking --error-format json` prints one finding per line. */
function parseFindings(stdout: string): BreakingFinding[] {
  return stdout
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => {
      const parsed: unknown = JSON.parse(line);
      assert.ok(typeof parsed === "object" && parsed !== null, `not a finding: ${line}`);
      const { path: file, type, message } = parsed as Record<string, unknown>;
      assert.ok(typeof file === "string" && typeof type === "string" && typeof message === "string", `not a finding: ${line}`);
      return { path: file, type, message };
    });
}

/** buf breaking of the contracts in `dir` (a copy of the repository's proto/ and buf.yaml) against the released image. */
async function breakingAgainstRelease(dir: string): Promise<{ result: RunResult; findings: BreakingFinding[] }> {
  const result = await runBuf(["breaking", "proto", "--against", releasedImage, "--error-format", "json"], dir);
  return { result, findings: result.code === BUF_FOUND_VIOLATIONS ? parseFindings(result.stdout) : [] };
}

/** A scratch copy of the contracts (proto/ and buf.yaml), removed after the test. */
async function copyOfContracts(t: TestScope): Promise<string> {
  const dir = await tempDir(t, "contracts");
  await cp(path.join(root, "proto"), path.join(dir, "proto"), { recursive: true });
  await cp(path.join(root, "buf.yaml"), path.join(dir, "buf.yaml"));
  return dir;
}

/** Replaces exactly one occurrence of `from`, so that an edit of the real proto cannot turn the test into a no-op. */
async function editOnce(file: string, from: string, to: string): Promise<void> {
  const text = await readFile(file, "utf8");
  const count = text.split(from).length - 1;
  assert.equal(count, 1, `expected exactly one ${JSON.stringify(from)} in ${file}, found ${count}; update this test to the current proto`);
  await writeFile(file, text.replace(from, to));
}

/** Every file under `dir`, as sorted relative paths (none when the directory does not exist). */
async function listFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (relative: string): Promise<void> => {
    for (const entry of await readdir(path.join(dir, relative), { withFileTypes: true })) {
      const child = path.posix.join(relative, entry.name);
      if (entry.isDirectory()) await walk(child);
      else found.push(child);
    }
  };
  try {
    await walk("");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  return found.sort();
}

test("buf lint finds nothing in the contracts", { timeout: TEST_TIMEOUT_MS }, async () => {
  const result = await runBuf(["lint"]);
  assert.equal(result.code, 0, `buf lint failed:\n${output(result)}`);
  assert.equal(result.stdout + result.stderr, "", `buf lint printed something:\n${output(result)}`);
});

test("the committed generated TypeScript is exactly what buf generate produces from the current contracts", { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const scratch = await tempDir(t, "generate");
  const result = await runBuf(["generate", "--output", scratch]);
  assert.equal(result.code, 0, `buf generate failed:\n${output(result)}`);

  const freshDir = path.join(scratch, generatedDir);
  const committedDir = path.join(root, generatedDir);
  const fresh = await listFiles(freshDir);
  assert.ok(fresh.length > 0, `buf generate wrote nothing to ${generatedDir}: does buf.gen.yaml still generate there?`);
  const committed = await listFiles(committedDir);

  const committedSet = new Set(committed);
  const freshSet = new Set(fresh);
  const missing = fresh.filter((file) => !committedSet.has(file));
  const extra = committed.filter((file) => !freshSet.has(file));
  const stale: string[] = [];
  for (const file of fresh.filter((name) => committedSet.has(name))) {
    const [now, then] = await Promise.all([readFile(path.join(freshDir, file)), readFile(path.join(committedDir, file))]);
    if (!now.equals(then)) stale.push(file);
  }
  const problems = [
    ...stale.map((file) => `  stale:   ${generatedDir}/${file}`),
    ...missing.map((file) => `  missing: ${generatedDir}/${file} (generated, not committed)`),
    ...extra.map((file) => `  extra:   ${generatedDir}/${file} (committed, no longer generated)`),
  ];
  assert.deepEqual(problems, [], `the generated code is not current; run \`npm run generate\` and commit the result:\n${problems.join("\n")}`);
});

test("the released baseline image holds the shop contracts and only what they import", { timeout: TEST_TIMEOUT_MS }, async () => {
  const result = await runBuf(["build", releasedImage, "--exclude-source-info", "-o", "-#format=json"]);
  assert.equal(result.code, 0, `cannot read api/released.binpb:\n${output(result)}`);
  const image = JSON.parse(result.stdout) as { file?: { name?: string; bufExtension?: { isImport?: boolean } }[] };
  const files = (image.file ?? []).map((file) => ({ name: file.name ?? "", isImport: file.bufExtension?.isImport === true }));
  const own = files.filter((file) => !file.isImport).map((file) => file.name);
  const imported = files.filter((file) => file.isImport).map((file) => file.name);

  assert.ok(own.includes("shop/catalog/v1/catalog.proto"), `the baseline lacks the catalog contract: ${own.join(", ")}`);
  assert.deepEqual(
    own.filter((name) => !name.startsWith("shop/")),
    [],
    "the baseline holds files that are not shop contracts (was it built from `proto`?)",
  );
  assert.deepEqual(
    imported.filter((name) => !name.startsWith("google/protobuf/")),
    [],
    "the baseline imports something besides well-known types",
  );
});

test("the current contracts pass the breaking gate against the released baseline", { timeout: TEST_TIMEOUT_MS }, async () => {
  const result = await runBuf(["breaking", "proto", "--against", releasedImage]);
  assert.equal(
    result.code,
    0,
    `the contracts break the released API. Do not refresh api/released.binpb to silence this: put the change in a new version package (see api/README.md).\n${output(result)}`,
  );
  assert.equal(result.stdout + result.stderr, "");
});

test("a field whose type changed fails the breaking gate, naming the field and both types", { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = await copyOfContracts(t);
  await editOnce(path.join(dir, catalogProto), "  int32 stock_available = 5;", "  string stock_available = 5;");

  const { result, findings } = await breakingAgainstRelease(dir);
  assert.equal(result.code, BUF_FOUND_VIOLATIONS, `expected buf breaking to report a violation (exit 100):\n${output(result)}`);
  const finding = findings.find((f) => f.type === "FIELD_SAME_TYPE");
  assert.ok(finding, `no FIELD_SAME_TYPE finding in:\n${result.stdout}`);
  assert.equal(finding.path, catalogProto);
  assert.match(finding.message, /"stock_available"/);
  assert.match(finding.message, /"Product"/);
  assert.match(finding.message, /from "int32" to "string"/);
});

test("an RPC that was deleted fails the breaking gate, naming the RPC", { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = await copyOfContracts(t);
  await editOnce(path.join(dir, catalogProto), "  rpc GetProduct(GetProductRequest) returns (GetProductResponse);\n", "");

  const { result, findings } = await breakingAgainstRelease(dir);
  assert.equal(result.code, BUF_FOUND_VIOLATIONS, `expected buf breaking to report a violation (exit 100):\n${output(result)}`);
  const finding = findings.find((f) => f.type === "RPC_NO_DELETE");
  assert.ok(finding, `no RPC_NO_DELETE finding in:\n${result.stdout}`);
  assert.match(finding.message, /"GetProduct"/);
  assert.match(finding.message, /"CatalogService"/);
});

test("a new field with a new number passes the breaking gate", { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dir = await copyOfContracts(t);
  await editOnce(
    path.join(dir, catalogProto),
    "  google.protobuf.Timestamp update_time = 8;\n",
    "  google.protobuf.Timestamp update_time = 8;\n  // Added by the test: a purely additive change.\n  string colour = 99;\n",
  );

  const { result } = await breakingAgainstRelease(dir);
  assert.equal(result.code, 0, `an additive change was reported as breaking:\n${output(result)}`);
  assert.equal(result.stdout, "");
});
