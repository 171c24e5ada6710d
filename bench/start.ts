/**
 * Section "start" (`npm run bench -- start`): what `npm start` costs, as the
 * user sees it. Each round runs, in alternating order:
 *  - a first start: `npm start` on an empty data dir, no web build and no
 *    bundle of the start code (node_modules/.cache/meshwork-launch, removed
 *    before it: a cache npm start rebuilds), as in a fresh clone, stopped at
 *    the banner;
 *  - a warm start: on a data dir and web build made by an earlier start,
 *    then `npm run load` for --load-seconds against it.
 * Each is timed from spawning npm to the banner line, and its memory is the
 * resident memory (VmRSS) of npm and every process below it (the shell, any
 * tsx wrapper, the service process, esbuild), summed: at the banner, and
 * after the load. Everything lives in a temp dir (data dirs via *_DATA_DIR,
 * the web build via MESHWORK_WEB_BUILD_DIR, every port 0), so neither .data/
 * nor web/dist of the checkout is touched.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import type { ChildGroup } from "./child-group.js";
import { totalCpuSeconds, totalRssKb, treeRss, type ProcessRss } from "./process-tree.js";
import type { BenchContext, BenchSection, SectionOutcome } from "./section.js";
import { fixed, formatRounds, formatTable, goalLine, roundFigures, roundOrder, roundsCaveat, straddles, type Goal } from "./stats.js";

const REPO_ROOT = path.resolve(import.meta.dirname, "..");
const SERVICES = ["IDENTITY", "CATALOG", "PAYMENTS", "ORDERS", "NOTIFICATIONS", "GATEWAY"] as const;
const BANNER = "Meshwork is running";
const START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 20_000;

/** Issue 16 point 5. */
export const START_GOALS = {
  warmWallMs: { direction: "at most", limit: 3000 },
  warmMb: { direction: "at most", limit: 450 },
  firstWallMs: { direction: "at most", limit: 8000 },
  afterLoadMb: { direction: "at most", limit: 600 },
} as const satisfies Record<string, Goal>;

type Kind = "first" | "warm";

interface StartRun {
  readonly kind: Kind;
  readonly wallMs: number;
  /** "ready in N ms" as the process itself printed it (from its own start). */
  readonly insideMs: number;
  readonly processes: readonly ProcessRss[];
  readonly afterLoad: readonly ProcessRss[] | undefined;
  readonly loadOk: boolean;
}

export const startSection: BenchSection = {
  name: "start",
  onlyWhenNamed: true,
  // A first start ~11 s, a warm one ~5 s, stops ~2 s each, the load, plus a preparing start.
  estimateMs: (options) => 20_000 + options.startRounds * (20_000 + options.startLoadMs),
  run: runStartBench,
};

/** The environment of one `npm start`: its data and web build under `dir`, every port free-picked, nothing of the caller's settings. */
export function startEnv(base: NodeJS.ProcessEnv, dir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  const ours = new RegExp(`^(${SERVICES.join("|")})_|^MESHWORK_|^OTEL_`);
  for (const [key, value] of Object.entries(base)) if (!ours.test(key)) env[key] = value;
  for (const service of SERVICES) {
    env[`${service}_DATA_DIR`] = path.join(dir, "pglite");
    env[`${service}_PORT`] = "0";
    env[`${service}_METRICS_PORT`] = "0";
  }
  env.MESHWORK_WEB_BUILD_DIR = path.join(dir, "web-dist");
  return env;
}

/** The gateway's URL and the process's own "ready in" from the banner; undefined until the banner is complete. */
export function parseBanner(output: string): { gatewayUrl: string; insideMs: number } | undefined {
  const ready = /Meshwork is running .*ready in (\d+) ms/.exec(output);
  const gateway = /web shop\s+(http:\/\/127\.0\.0\.1:\d+)\//.exec(output);
  if (!ready || !gateway) return undefined;
  return { gatewayUrl: gateway[1]!, insideMs: Number(ready[1]) };
}

/** How `child` ended, once it has (at once if it already had). */
export const exited = (child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve({ code: child.exitCode, signal: child.signalCode })
    : new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));

const killGroup = (child: ChildProcess, signal: NodeJS.Signals): void => {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    // the group is gone
  }
};

/** Ctrl-C, as a terminal would send it to the whole group; SIGKILL after STOP_TIMEOUT_MS. */
async function stopGroup(child: ChildProcess): Promise<void> {
  killGroup(child, "SIGINT");
  const timer = setTimeout(() => killGroup(child, "SIGKILL"), STOP_TIMEOUT_MS);
  await exited(child);
  clearTimeout(timer);
  // Anything the leader left behind.
  killGroup(child, "SIGKILL");
}

/** Where scripts/launch.mjs keeps its bundles. */
const LAUNCH_CACHE = path.join(REPO_ROOT, "node_modules", ".cache", "meshwork-launch");

async function startOnce(children: ChildGroup, kind: Kind, dir: string, loadMs: number): Promise<StartRun> {
  const env = startEnv(process.env, dir);
  if (kind === "first") await rm(LAUNCH_CACHE, { recursive: true, force: true });
  const began = performance.now();
  const child = children.spawnGroup("npm", ["start"], { ...env, FORCE_COLOR: "0" }, REPO_ROOT);
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  try {
    const banner = await new Promise<{ gatewayUrl: string; insideMs: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner after ${START_TIMEOUT_MS} ms:\n${output}`)), START_TIMEOUT_MS);
      const check = (): void => {
        const parsed = output.includes(BANNER) ? parseBanner(output) : undefined;
        if (!parsed) return;
        clearTimeout(timer);
        resolve(parsed);
      };
      child.stdout?.on("data", check);
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`npm start exited (${code}) before the banner:\n${output}`));
      });
    });
    const wallMs = performance.now() - began;
    const processes = await treeRss(child.pid!);
    let afterLoad: ProcessRss[] | undefined;
    let loadOk = true;
    if (kind === "warm" && loadMs > 0) {
      const load = children.spawnGroup("npm", ["run", "load", "--silent", "--", `--url=${banner.gatewayUrl}`, `--duration=${Math.round(loadMs / 1000)}`], process.env, REPO_ROOT);
      let loadOutput = "";
      load.stdout?.on("data", (chunk: Buffer) => (loadOutput += chunk.toString()));
      load.stderr?.on("data", (chunk: Buffer) => (loadOutput += chunk.toString()));
      const { code } = await exited(load);
      loadOk = code === 0;
      if (!loadOk) process.stderr.write(`npm run load exited ${code}:\n${loadOutput.slice(-2000)}\n`);
      afterLoad = await treeRss(child.pid!);
    }
    return { kind, wallMs, insideMs: banner.insideMs, processes, afterLoad, loadOk };
  } finally {
    await stopGroup(child);
  }
}

const mb = (kb: number): number => kb / 1024;
const mbText = (value: number): string => `${fixed(value, 0)} MB`;
const msText = (value: number): string => `${fixed(value / 1000, 2)} s`;

/** "npm 58 + sh 2 + node 50 + node 446 + esbuild 17": where the memory of one run sits. */
function breakdown(processes: readonly ProcessRss[]): string {
  return processes.map((process) => `${process.name} ${fixed(mb(process.rssKb), 0)}`).join(" + ");
}

export async function runStartBench({ options, print, children }: BenchContext): Promise<SectionOutcome> {
  print(`## start: npm start to its banner, first (empty data dir, no web build, no start bundle) and warm, then ${fixed(options.startLoadMs / 1000, 0)} s of npm run load`);
  print("memory: VmRSS summed over npm and every process below it; CPU: theirs and their waited-for children's (less noisy than wall time on a busy machine).");
  print("The machine is shared: rounds alternate first/warm; figures are medians (min–max).");
  const caveat = roundsCaveat(options.startRounds);
  if (caveat) print(caveat);
  const root = await mkdtemp(path.join(tmpdir(), "meshwork-bench-start-"));
  const runs: StartRun[] = [];
  let failed = 0;
  try {
    // The warm case's data and web build: made by a start that is not measured.
    const warmDir = path.join(root, "warm");
    await startOnce(children, "first", warmDir, 0);
    for (let round = 1; round <= options.startRounds; round++) {
      for (const kind of roundOrder<Kind>(["first", "warm"], round)) {
        const dir = kind === "warm" ? warmDir : path.join(root, `first-${round}`);
        const run = await startOnce(children, kind, dir, options.startLoadMs);
        if (!run.loadOk) failed++;
        runs.push(run);
        const after = run.afterLoad ? `; after load ${mbText(mb(totalRssKb(run.afterLoad)))} (${breakdown(run.afterLoad)})` : "";
        print(
          `round ${round} ${kind.padEnd(5)} ${msText(run.wallMs)} wall (${msText(run.insideMs)} inside, ${fixed(totalCpuSeconds(run.processes), 2)} s CPU), ${mbText(mb(totalRssKb(run.processes)))} (${breakdown(run.processes)})${after}`,
        );
        if (kind === "first") await rm(dir, { recursive: true, force: true });
      }
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  print();

  const of = (kind: Kind, figure: (run: StartRun) => number) => roundFigures(runs.filter((run) => run.kind === kind).map(figure));
  const wall = { first: of("first", (run) => run.wallMs), warm: of("warm", (run) => run.wallMs) };
  const inside = { first: of("first", (run) => run.insideMs), warm: of("warm", (run) => run.insideMs) };
  const cpu = { first: of("first", (run) => totalCpuSeconds(run.processes)), warm: of("warm", (run) => totalCpuSeconds(run.processes)) };
  const memory = { first: of("first", (run) => mb(totalRssKb(run.processes))), warm: of("warm", (run) => mb(totalRssKb(run.processes))) };
  const afterLoad = of("warm", (run) => (run.afterLoad ? mb(totalRssKb(run.afterLoad)) : Number.NaN));
  const seconds = (value: number, digits: number) => fixed(value / 1000, digits);
  for (const line of formatTable(
    ["start", "wall to banner s", "inside the process s", "CPU to banner s", "MB at banner", "MB after load"],
    (["first", "warm"] as const).map((kind) => [
      kind,
      formatRounds(wall[kind], 2, seconds),
      formatRounds(inside[kind], 2, seconds),
      formatRounds(cpu[kind], 2),
      formatRounds(memory[kind], 0),
      kind === "warm" ? formatRounds(afterLoad, 0) : "-",
    ]),
  )) {
    print(line);
  }
  print();
  const goals: [string, Goal, typeof wall.warm, (value: number) => string][] = [
    ["warm npm start, wall to banner,", START_GOALS.warmWallMs, wall.warm, msText],
    ["warm npm start, MB across its processes,", START_GOALS.warmMb, memory.warm, mbText],
    ["first npm start, wall to banner,", START_GOALS.firstWallMs, wall.first, msText],
    [`MB across npm start's processes after ${fixed(options.startLoadMs / 1000, 0)} s of npm run load`, START_GOALS.afterLoadMb, afterLoad, mbText],
  ];
  for (const [name, goal, figures, format] of goals) {
    print(goalLine(name, goal, figures.median, format, straddles(figures, goal) ? "rounds fall on both sides of the limit" : undefined));
  }
  if (options.startLoadMs !== 60_000) print("(the issue's memory goal is after 60 s of load: --load-seconds=60)");
  return { failedCalls: failed };
}
