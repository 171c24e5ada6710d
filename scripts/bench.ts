/**
 * `npm run bench`: performance figures, printed side by side. A benchmark,
 * not a test: a missed target is reported, not failed; only failed calls make
 * the exit code non-zero.
 *
 *   npm run bench                          every section with the defaults (about 6 minutes)
 *   npm run bench -- --seconds=4 --rounds=7
 *   npm run bench -- host-vs-bare --concurrency=1,4,16 --cpu-prof
 *   npm run bench -- observability          tracing and metrics on vs off
 *   BENCH_SECONDS=2 BENCH_WARMUP_SECONDS=1 npm run bench
 *
 * Every comparison is the median of the rounds (5 by default, the order of
 * the compared sides alternating), printed with the min–max spread, a line
 * when that spread exceeds the difference, and each goal as MET or MISSED.
 *
 * Sections live in bench/; add one by adding it to SECTIONS (bench/sections.ts).
 */
import { adoptGrpcClientTables, adoptLeanAsyncBind } from "@meshwork/platform";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createChildGroup } from "../bench/child-group.js";
import { BenchOptionError, parseBenchOptions, USAGE, type BenchOptions } from "../bench/options.js";
import { estimateMs, SECTIONS, selectSections } from "../bench/sections.js";

const print = (line = ""): void => void process.stdout.write(`${line}\n`);

/** 206000 -> "3 min 26 s" */
function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  return seconds < 60 ? `${seconds} s` : `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}

async function main(): Promise<number> {
  // The load clients in this process always get what a platform client
  // gets (packages/platform/src/lean-async-bind.ts, http2-stream-tables.ts),
  // not only once the saga section has made one: a cheaper client, the same
  // in every section.
  adoptLeanAsyncBind();
  adoptGrpcClientTables();
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

  const selected = selectSections(options);
  const started = performance.now();
  print(`# meshwork bench: ${selected.map((section) => section.name).join(", ")} (estimated ${formatDuration(estimateMs(selected, options))})`);
  print();
  let failedCalls = 0;
  for (const section of selected) {
    const outcome = await section.run({ options, print, children });
    failedCalls += outcome.failedCalls;
    print();
  }
  print(`# done in ${formatDuration(performance.now() - started)}`);
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
