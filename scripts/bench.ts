/**
 * `npm run bench`: performance figures, printed side by side. A benchmark,
 * not a test: a missed target is reported, not failed; only failed calls make
 * the exit code non-zero.
 *
 *   npm run bench                          every section with the defaults (under a minute)
 *   npm run bench -- --seconds=10 --rounds=3
 *   npm run bench -- host-vs-bare --concurrency=1,4,16 --cpu-prof
 *   npm run bench -- observability          tracing and metrics on vs off
 *   BENCH_SECONDS=2 BENCH_WARMUP_SECONDS=1 npm run bench
 *
 * Sections live in bench/; add one by adding it to SECTIONS.
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createChildGroup } from "../bench/child-group.js";
import { hostVsBareSection } from "../bench/host-vs-bare.js";
import { observabilitySection } from "../bench/observability.js";
import { sagaSection } from "../bench/saga.js";
import { streamsSection } from "../bench/streams.js";
import { BenchOptionError, parseBenchOptions, USAGE, type BenchOptions } from "../bench/options.js";
import type { BenchSection } from "../bench/section.js";

const SECTIONS: readonly BenchSection[] = [hostVsBareSection, observabilitySection, sagaSection, streamsSection];

const print = (line = ""): void => void process.stdout.write(`${line}\n`);

async function main(): Promise<number> {
  let options: BenchOptions;
  try {
    options = parseBenchOptions(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof BenchOptionError) {
      process.stderr.write(`${error.message}\n`);
      return 2;
    }
    throw error;
  }
  if (options.help) {
    print(USAGE);
    return 0;
  }
  const unknown = options.sections.filter((name) => !SECTIONS.some((section) => section.name === name));
  if (unknown.length > 0) {
    process.stderr.write(`unknown section(s): ${unknown.join(", ")}\n\n${USAGE}\n`);
    return 2;
  }
  if (options.cpuProfDir === "") options = { ...options, cpuProfDir: await mkdtemp(path.join(tmpdir(), "meshwork-bench-prof-")) };
  else if (options.cpuProfDir !== undefined) options = { ...options, cpuProfDir: path.resolve(options.cpuProfDir) };

  // Whatever way this process ends, the server children end with it.
  const children = createChildGroup();
  process.once("exit", () => children.killAll());
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      children.killAll();
      process.exit(130);
    });
  }

  const selected = SECTIONS.filter((section) => options.sections.length === 0 || options.sections.includes(section.name));
  const estimate = selected.reduce((sum, section) => sum + section.estimateMs(options), 0);
  print(`# meshwork bench (about ${Math.round(estimate / 1000)} s)`);
  print();
  let failedCalls = 0;
  for (const section of selected) {
    const outcome = await section.run({ options, print, children });
    failedCalls += outcome.failedCalls;
    print();
  }
  if (failedCalls > 0) {
    print(`${failedCalls} call(s) failed: the figures above are not trustworthy`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
