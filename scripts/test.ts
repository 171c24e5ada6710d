/**
 * `npm test`: runs every *.test.ts file with node's test runner (each file in
 * its own process, several at once), prints the spec report and ends with
 * the line "N passed, N failed, N skipped".
 *
 * Files named *.serial.test.ts run afterwards, one at a time: they disturb
 * shared infrastructure (restarting the broker) and must not run beside others.
 *
 * Arguments filter the files by substring: `npm test -- catalog`.
 */
import { readdir } from "node:fs/promises";
import path from "node:path";
import { run } from "node:test";
import { spec } from "node:test/reporters";
import { ensureWebBuild } from "./lib/web-build.js";

const root = path.resolve(import.meta.dirname, "..");
const SKIP_DIRS = new Set(["node_modules", ".git", ".data", "dist", "gen"]);

async function findTests(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!SKIP_DIRS.has(entry.name) && !entry.name.startsWith(".")) found.push(...(await findTests(path.join(dir, entry.name))));
    } else if (entry.name.endsWith(".test.ts")) {
      found.push(path.join(dir, entry.name));
    }
  }
  return found;
}

const filters = process.argv.slice(2);
const files = (await findTests(root)).filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter))).sort();
if (files.length === 0) {
  process.stderr.write(`no test files match ${filters.join(", ")}\n`);
  process.exit(1);
}

// Browser and contract tests load the built web app: build it once here, not in each file.
if (files.some((file) => file.includes(`${path.sep}test${path.sep}web${path.sep}`))) {
  const web = await ensureWebBuild();
  if (web.reason) process.stdout.write(`built the web app (${web.reason}) in ${web.ms} ms\n`);
}

let passed = 0;
let failed = 0;
let skipped = 0;

// A file that crashes before or between its tests surfaces as a failed
// top-level entry: count it, or a broken file could look like a green run.
function isFileLevelFailure(event: { nesting: number; name: string }, batch: readonly string[]): boolean {
  return event.nesting === 0 && batch.some((file) => event.name === file || file.endsWith(event.name));
}

async function runBatch(batch: readonly string[], concurrency: number): Promise<void> {
  if (batch.length === 0) return;
  const stream = run({ files: [...batch], concurrency, timeout: 10 * 60_000 });
  stream.on("test:pass", (event) => {
    if (event.details.type === "suite") return;
    if (event.skip || event.todo) skipped++;
    else passed++;
  });
  stream.on("test:fail", (event) => {
    if (event.details.type === "suite" && !isFileLevelFailure(event, batch)) return;
    failed++;
  });
  const report = stream.compose(new spec());
  report.pipe(process.stdout, { end: false });
  await new Promise<void>((resolve, reject) => report.once("end", resolve).once("error", reject));
}

const serial = files.filter((file) => file.endsWith(".serial.test.ts"));
await runBatch(
  files.filter((file) => !serial.includes(file)),
  Number(process.env.MESHWORK_TEST_CONCURRENCY ?? 4),
);
await runBatch(serial, 1);
process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
