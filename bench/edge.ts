/**
 * Section "edge": what the gateway costs a call, against the floor of any
 * gRPC hop. GetProduct four ways, in one run, the order alternating per round:
 *
 *   direct   client → catalog
 *   gateway  client → gateway (catalog cache off) → catalog
 *   cached   client → gateway (every call a cache hit)
 *   proxy    client → minimal grpc-js proxy (bench/bare-proxy.ts) → catalog
 *
 * and, only when BENCH_EDGE_PATHS names it:
 *
 *   connect  client → gateway with GATEWAY_GRPC_PASSTHROUGH=false (gRPC
 *            served by Connect, messages decoded and encoded again) → catalog
 *
 * The gateway serves gRPC itself by default (services/gateway/src/grpc-passthrough.ts);
 * "connect" is the path every gRPC call took before, and that Connect and
 * gRPC-web calls take still.
 *
 * The catalog is the platform catalog of host-vs-bare (memory store); the
 * gateways are the real one (bench/gateway-server.ts) with the rate limits
 * raised. Every server runs in its own process; one raw grpc-js load client
 * in this process sends the same bytes on the same path to each, on the
 * gateway's gRPC port, so the client side is the same for all four. Server
 * CPU per call sums every process a call passes (a gateway path: gateway and
 * catalog), counted by the process the client calls.
 *
 * BENCH_EDGE_BASELINE=<another checkout of this repository> adds a fifth
 * path, "baseline": that checkout's gateway (cache off) in front of the same
 * catalog, so a change to the edge is measured before/after in one run, its
 * rounds alternating with the others; with BENCH_EDGE_BASELINE_CACHED=1 it
 * serves cache hits and is compared with "cached". BENCH_EDGE_PATHS=gateway,baseline
 * measures only the paths named (goals on paths left out: NOT MEASURED).
 *
 * The goals: the gateway keeps at least the bare proxy's calls/s
 * ratio to direct, and cache hits reach at least direct's calls/s. Ratios
 * are taken round by round (the paths of a round ran back to back, so drift
 * on these shared cores falls on all of them alike), then their median.
 */
import path from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { Client, credentials } from "@grpc/grpc-js";
import { GetProductResponseSchema } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { getProductRequest } from "./bytes-server.js";
import { GET_PRODUCT_PATH } from "./bare-proxy.js";
import type { LoadTarget } from "./load.js";
import { findMainThreadProfile, summarizeCpuProfile } from "./profile-summary.js";
import type { BenchContext, BenchSection, SectionOutcome } from "./section.js";
import { forkServer, type ServerProcess } from "./server-process.js";
import type { StartSettings } from "./server-protocol.js";
import { byRound, callOnce, compareCpu, failureLines, pairedCpu, roundsEstimateMs, runAlternatingRounds, summaryTable, type Cell, type CellKind, type Measured } from "./server-rounds.js";
import { compareRounds, comparisonCaveat, fixed, formatDifferences, goalLine, roundFigures, roundsCaveat, signed, spreadWarning, type Goal, type RoundFigures } from "./stats.js";

export const EDGE_PATHS = ["direct", "gateway", "cached", "proxy"] as const;
export type EdgePath = (typeof EDGE_PATHS)[number];
/** The extra path of BENCH_EDGE_BASELINE. */
const BASELINE = "baseline";
/** The gateway with gRPC through Connect: measured only when BENCH_EDGE_PATHS names it. */
const CONNECT = "connect";
const LABEL: Record<string, string> = {
  direct: "direct",
  gateway: "gateway, cache off",
  cached: "gateway, cache hit",
  proxy: "bare grpc-js proxy",
  [CONNECT]: "gateway via Connect",
  [BASELINE]: "baseline gateway",
};
const label = (kind: CellKind): string => LABEL[kind] ?? kind;
/** Goals are judged at these concurrencies when the run measured them. */
const GOAL_CONCURRENCIES = [1, 16] as const;
/** Long enough that no entry expires during a run: the cached path measures hits only. */
const CACHE_HIT_TTL_MS = 3_600_000;

export const edgeSection: BenchSection = {
  name: "edge",
  estimateMs: (options) => roundsEstimateMs(options, selectPaths(process.env).length) + 5000,
  run: runEdgeBench,
};

/** The processes of the section, by the name their profiles are kept under. */
type ProcessName = "catalog" | "gateway" | "gateway-cached" | "proxy" | "gateway-connect" | "gateway-baseline";

/** The paths a run measures: all four, "baseline" too with BENCH_EDGE_BASELINE, or those BENCH_EDGE_PATHS names ("connect" only then). */
export function selectPaths(env: Readonly<Record<string, string | undefined>>): readonly string[] {
  const all: string[] = [...EDGE_PATHS, ...(env.BENCH_EDGE_BASELINE ? [BASELINE] : [])];
  const known = [...all, CONNECT];
  const named = (env.BENCH_EDGE_PATHS ?? "")
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name !== "");
  const unknown = named.filter((name) => !known.includes(name));
  if (unknown.length > 0) throw new Error(`BENCH_EDGE_PATHS: unknown path(s) ${unknown.join(", ")} (known: ${known.join(", ")})`);
  return named.length === 0 ? all : known.filter((name) => named.includes(name));
}

async function runEdgeBench({ options, print, children }: BenchContext): Promise<SectionOutcome> {
  print("## edge: GetProduct direct to catalog, through the gateway (cache off, cache hit), and through a bare grpc-js proxy");
  print(
    `each server in its own process, one load client (raw grpc-js, one HTTP/2 connection per path, gRPC on the gateway's port) in this one; ` +
      `server CPU per call sums every process a call passes through; ${options.warmupMs / 1000} s warm-up + ${options.measureMs / 1000} s measured per cell; ` +
      `${options.rounds} round(s), path order alternating; figures are medians over the rounds, (min–max) their spread`,
  );
  const caveat = roundsCaveat(options.rounds);
  if (caveat) print(caveat);
  if (options.cpuProfDir !== undefined) print("servers are CPU-profiled (--cpu-prof): expect lower numbers than without");
  const kinds = selectPaths(process.env);
  const baseline = process.env.BENCH_EDGE_BASELINE ? path.resolve(process.env.BENCH_EDGE_BASELINE) : undefined;
  const baselineCached = process.env.BENCH_EDGE_BASELINE_CACHED === "1";
  /** The path the baseline is compared with. */
  const counterpart = baselineCached ? "cached" : "gateway";
  if (baseline) print(`baseline gateway: the one in ${baseline}, ${baselineCached ? "serving cache hits" : "cache off"}`);
  const profileDir = (name: ProcessName): string | undefined => (options.cpuProfDir === undefined ? undefined : path.join(options.cpuProfDir, name));
  // Direct is the reference of every ratio: always measured, even when BENCH_EDGE_PATHS leaves it out of the rounds.
  const catalog = forkServer(children, "platform", { cpuProfDir: profileDir("catalog") });
  const processes: Partial<Record<ProcessName, ServerProcess>> = {
    catalog,
    ...(kinds.includes("gateway") ? { gateway: forkServer(children, "gateway", { cpuProfDir: profileDir("gateway") }) } : {}),
    ...(kinds.includes("cached") ? { "gateway-cached": forkServer(children, "gateway", { cpuProfDir: profileDir("gateway-cached") }) } : {}),
    ...(kinds.includes("proxy") ? { proxy: forkServer(children, "proxy", { cpuProfDir: profileDir("proxy") }) } : {}),
    ...(kinds.includes(CONNECT) ? { "gateway-connect": forkServer(children, "gateway", { cpuProfDir: profileDir("gateway-connect") }) } : {}),
    ...(kinds.includes(BASELINE) ? { "gateway-baseline": forkServer(children, "gateway", { cpuProfDir: profileDir("gateway-baseline"), checkout: baseline }) } : {}),
  };
  const front: Record<string, ProcessName> = { direct: "catalog", gateway: "gateway", cached: "gateway-cached", proxy: "proxy", [CONNECT]: "gateway-connect", [BASELINE]: "gateway-baseline" };
  const measured: Record<string, Measured> = Object.fromEntries(kinds.map((kind) => [kind, kind === "direct" ? catalog : [processes[front[kind]!]!, catalog]]));
  const clients: Client[] = [];
  const cells: Cell[] = [];
  try {
    const { productId, request } = getProductRequest();
    const catalogPort = await catalog.start();
    const upstream = `127.0.0.1:${catalogPort}`;
    const settings: Record<string, StartSettings> = {
      gateway: { upstream, catalogCacheMs: 0 },
      cached: { upstream, catalogCacheMs: CACHE_HIT_TTL_MS },
      proxy: { upstream },
      [CONNECT]: { upstream, catalogCacheMs: 0, grpcPassthrough: false },
      [BASELINE]: { upstream, catalogCacheMs: baselineCached ? CACHE_HIT_TTL_MS : 0 },
    };
    const ports: Record<string, number> = {
      direct: catalogPort,
      ...Object.fromEntries(await Promise.all(kinds.filter((kind) => kind !== "direct").map(async (kind) => [kind, await processes[front[kind]!]!.start(undefined, settings[kind])] as const))),
    };
    const targets: Record<string, LoadTarget> = {};
    const sizes: string[] = [];
    let reference: Buffer | undefined;
    for (const kind of ["direct", ...kinds.filter((kind) => kind !== "direct")]) {
      const client = new Client(`127.0.0.1:${ports[kind]}`, credentials.createInsecure(), {});
      clients.push(client);
      const response = await callOnce(client, GET_PRODUCT_PATH, request);
      const product = fromBinary(GetProductResponseSchema, response).product;
      if (product?.id !== productId) throw new Error(`${label(kind)}: GetProduct(${productId}) answered product ${product?.id ?? "(none)"}`);
      reference ??= response;
      if (response.length !== reference.length) throw new Error(`${label(kind)} answers ${response.length} B, direct ${reference.length} B: the comparison would be unfair`);
      sizes.push(`${kind} ${response.length} B${response.equals(reference) ? "" : " (different bytes)"}`);
      targets[kind] = { client, path: GET_PRODUCT_PATH, request, responseBytes: response.length };
      if (!kinds.includes(kind)) client.close();
    }
    print(`payload: request ${request.length} B (GetProductRequest ${productId}); responses ${sizes.join(", ")}`);
    print();
    cells.push(...(await runAlternatingRounds({ kinds, servers: measured, targets, options, print, label })));
  } finally {
    for (const client of clients) client.close();
    await Promise.all(Object.values(processes).map((server) => server.stop()));
  }

  print();
  print("summary: median over rounds, (min–max) across rounds; server CPU is that of every process on the path");
  for (const line of summaryTable(cells, kinds, options.concurrency, label)) print(line);
  print();
  for (const concurrency of options.concurrency) for (const line of edgeRatioLines(cells, concurrency)) print(line);
  if (kinds.includes(BASELINE) && kinds.includes(counterpart)) {
    print();
    for (const concurrency of options.concurrency) {
      const cpu = compareCpu(cells, BASELINE, counterpart, concurrency);
      print(
        `c=${concurrency}: this gateway spends ${signed(cpu.difference, 0)} µs server CPU per call against the baseline's (${signed(100 * cpu.relativeDifference, 1)}%; ` +
          `${fixed(cpu.other.median, 0)} vs ${fixed(cpu.base.median, 0)}, medians, catalog included in both)`,
      );
      print(`  difference round by round (both back to back): ${formatDifferences(pairedCpu(cells, BASELINE, counterpart, concurrency), 0)} µs`);
      const warning = spreadWarning(cpu);
      if (warning) print(`  ${warning}`);
    }
  }
  print();
  for (const line of edgeGoalLines(cells)) print(line);

  for (const name of ["gateway", "gateway-cached", "proxy", "gateway-connect", "gateway-baseline"] as const) {
    const dir = profileDir(name);
    if (dir === undefined || processes[name] === undefined) continue;
    const kind = Object.keys(front).find((path) => front[path] === name)!;
    const file = await findMainThreadProfile(dir);
    print();
    if (file === undefined) {
      print(`### no CPU profile of the ${name} process in ${dir}`);
      continue;
    }
    const top = Math.max(...options.concurrency);
    const windows = cells.filter((cell) => cell.kind === kind && cell.concurrency === top).flatMap((cell) => (cell.window ? [cell.window] : []));
    print(`### CPU profile of the ${name} process (its own CPU, not the catalog's) at c=${top}: ${file}`);
    for (const line of await summarizeCpuProfile(file, { windows, calls: windows.reduce((sum, window) => sum + window.calls, 0) })) print(line);
  }
  for (const line of failureLines(cells)) print(line);
  return { failedCalls: cells.reduce((sum, cell) => sum + cell.failures, 0) };
}

/** `kind`'s figure over direct's, round by round (the paths of a round ran back to back). */
function ratioToDirect(cells: readonly Cell[], kind: EdgePath | typeof CONNECT, concurrency: number, figure: (cell: Cell) => number): number[] {
  const direct = byRound(cells, "direct", concurrency, figure);
  return byRound(cells, kind, concurrency, figure).map((value, index) => value / (direct[index] ?? Number.NaN));
}

const callsPerSecond = (cell: Cell): number => cell.callsPerSecond;
/** Calls one unit of server CPU buys: a path's CPU per call over direct's, inverted, is its capacity ratio. */
const callsPerCpu = (cell: Cell): number => 1 / cell.serverCpuUsPerCall;

const ratio = (figures: RoundFigures): string => (figures.rounds === 0 ? "-" : `${fixed(figures.median, 2)} (${fixed(figures.min, 2)}–${fixed(figures.max, 2)})`);

/** Per concurrency: each path's ratio to direct by calls/s and by server CPU, and what the gateway adds over the bare proxy's hop. */
export function edgeRatioLines(cells: readonly Cell[], concurrency: number): string[] {
  const lines = [`c=${concurrency}: ratio to direct, round by round, median (min–max):`];
  for (const kind of ["gateway", "cached", "proxy", CONNECT] as const) {
    if (!cells.some((cell) => cell.kind === kind)) continue;
    lines.push(
      `  ${label(kind).padEnd(20)} calls/s ${ratio(roundFigures(ratioToDirect(cells, kind, concurrency, callsPerSecond)))}; ` +
        `calls per server CPU ${ratio(roundFigures(ratioToDirect(cells, kind, concurrency, callsPerCpu)))}`,
    );
  }
  if (!cells.some((cell) => cell.kind === "proxy") || !cells.some((cell) => cell.kind === "gateway")) return lines;
  const cpu = (kind: EdgePath): number[] => byRound(cells, kind, concurrency, (cell) => cell.serverCpuUsPerCall);
  const overProxy = compareRounds(cpu("proxy"), cpu("gateway"));
  lines.push(
    `  the gateway (cache off) spends ${signed(overProxy.difference, 0)} µs server CPU per call over the bare proxy's hop ` +
      `(${fixed(overProxy.other.median, 0)} vs ${fixed(overProxy.base.median, 0)}, medians, catalog included in both)`,
  );
  const warning = spreadWarning(overProxy);
  if (warning) lines.push(`  ${warning}`);
  return lines;
}

/**
 * MET/MISSED per goal concurrency: the gateway's calls/s ratio to direct
 * against the bare proxy's (the figure), the same by server CPU
 * (the bench's main figure), and cache hits against direct's calls/s.
 */
export function edgeGoalLines(cells: readonly Cell[]): string[] {
  const lines: string[] = [];
  for (const concurrency of GOAL_CONCURRENCIES) {
    for (const [figure, name] of [
      [callsPerSecond, "calls/s"],
      [callsPerCpu, "calls per server CPU"],
    ] as const) {
      const proxy = ratioToDirect(cells, "proxy", concurrency, figure);
      const gateway = ratioToDirect(cells, "gateway", concurrency, figure);
      const comparison = compareRounds(proxy, gateway);
      const goal: Goal = { direction: "at least", limit: comparison.base.median };
      lines.push(
        goalLine(`gateway (cache off) ${name} ratio to direct at c=${concurrency}, against the bare proxy's,`, goal, comparison.other.median, (value) => fixed(value, 2), comparisonCaveat(comparison)),
      );
    }
    const hits = ratioToDirect(cells, "cached", concurrency, callsPerSecond);
    const comparison = compareRounds(byRound(cells, "direct", concurrency, callsPerSecond), byRound(cells, "cached", concurrency, callsPerSecond));
    lines.push(goalLine(`gateway cache hits calls/s ratio to direct at c=${concurrency}`, CACHE_HIT_GOAL, roundFigures(hits).median, (value) => fixed(value, 2), comparisonCaveat(comparison)));
  }
  return lines;
}

/** Cache hits answer at least as many calls per second as the catalog itself. */
export const CACHE_HIT_GOAL: Goal = { direction: "at least", limit: 1 };
