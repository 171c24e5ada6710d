/**
 * Section "edge": what the gateway costs a call, against the floor of any
 * gRPC hop. GetProduct four ways, in one run, the order alternating per round:
 *
 *   direct   client → catalog
 *   gateway  client → gateway (catalog cache off) → catalog
 *   cached   client → gateway (every call a cache hit)
 *   proxy    client → minimal grpc-js proxy (bench/bare-proxy.ts) → catalog
 *
 * The catalog is the platform catalog of host-vs-bare (memory store); the
 * gateways are the real one (bench/gateway-server.ts) with the rate limits
 * raised. Every server runs in its own process; one raw grpc-js load client
 * in this process sends the same bytes on the same path to each, on the
 * gateway's gRPC port, so the client side is the same for all four. Server
 * CPU per call sums every process a call passes (a gateway path: gateway and
 * catalog), counted by the process the client calls.
 *
 * The goals: the gateway keeps at least the bare proxy's calls/s
 * ratio to direct, and cache hits reach at least direct's calls/s. Ratios
 * are taken round by round (the paths of a round ran back to back, so drift
 * on these shared cores falls on all of them alike), then their median.
 */
import path from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Client, credentials } from "@grpc/grpc-js";
import { GetProductRequestSchema, GetProductResponseSchema } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { demoCatalog } from "../services/catalog/src/demo-catalog.js";
import { GET_PRODUCT_PATH } from "./bare-proxy.js";
import type { LoadTarget } from "./load.js";
import { findMainThreadProfile, summarizeCpuProfile } from "./profile-summary.js";
import type { BenchContext, BenchSection, SectionOutcome } from "./section.js";
import { forkServer, type ServerProcess } from "./server-process.js";
import { byRound, callOnce, failureLines, roundsEstimateMs, runAlternatingRounds, summaryTable, type Cell, type CellKind, type Measured } from "./server-rounds.js";
import { compareRounds, comparisonCaveat, fixed, goalLine, roundFigures, roundsCaveat, signed, spreadWarning, type Goal, type RoundFigures } from "./stats.js";

export const EDGE_PATHS = ["direct", "gateway", "cached", "proxy"] as const;
export type EdgePath = (typeof EDGE_PATHS)[number];
const LABEL: Record<EdgePath, string> = { direct: "direct", gateway: "gateway, cache off", cached: "gateway, cache hit", proxy: "bare grpc-js proxy" };
const label = (kind: CellKind): string => LABEL[kind as EdgePath] ?? kind;
/** Goals are judged at these concurrencies when the run measured them. */
const GOAL_CONCURRENCIES = [1, 16] as const;
/** Long enough that no entry expires during a run: the cached path measures hits only. */
const CACHE_HIT_TTL_MS = 3_600_000;

export const edgeSection: BenchSection = {
  name: "edge",
  estimateMs: (options) => roundsEstimateMs(options, EDGE_PATHS.length) + 5000,
  run: runEdgeBench,
};

/** The processes of the section, by the name their profiles are kept under. */
type ProcessName = "catalog" | "gateway" | "gateway-cached" | "proxy";

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
  const profileDir = (name: ProcessName): string | undefined => (options.cpuProfDir === undefined ? undefined : path.join(options.cpuProfDir, name));
  const processes: Record<ProcessName, ServerProcess> = {
    catalog: forkServer(children, "platform", { cpuProfDir: profileDir("catalog") }),
    gateway: forkServer(children, "gateway", { cpuProfDir: profileDir("gateway") }),
    "gateway-cached": forkServer(children, "gateway", { cpuProfDir: profileDir("gateway-cached") }),
    proxy: forkServer(children, "proxy", { cpuProfDir: profileDir("proxy") }),
  };
  const measured: Record<EdgePath, Measured> = {
    direct: processes.catalog,
    gateway: [processes.gateway, processes.catalog],
    cached: [processes["gateway-cached"], processes.catalog],
    proxy: [processes.proxy, processes.catalog],
  };
  const clients: Client[] = [];
  const cells: Cell[] = [];
  try {
    const productId = demoCatalog[0]?.id;
    if (productId === undefined) throw new Error("the demo catalog is empty: nothing to read");
    const request = Buffer.from(toBinary(GetProductRequestSchema, create(GetProductRequestSchema, { productId })));
    const upstream = `127.0.0.1:${await processes.catalog.start()}`;
    const ports: Record<EdgePath, number> = {
      direct: Number(upstream.split(":")[1]),
      ...Object.fromEntries(
        await Promise.all([
          processes.gateway.start(undefined, { upstream, catalogCacheMs: 0 }).then((port) => ["gateway", port] as const),
          processes["gateway-cached"].start(undefined, { upstream, catalogCacheMs: CACHE_HIT_TTL_MS }).then((port) => ["cached", port] as const),
          processes.proxy.start(undefined, { upstream }).then((port) => ["proxy", port] as const),
        ]),
      ),
    } as Record<EdgePath, number>;
    const targets: Record<string, LoadTarget> = {};
    const sizes: string[] = [];
    let reference: Buffer | undefined;
    for (const kind of EDGE_PATHS) {
      const client = new Client(`127.0.0.1:${ports[kind]}`, credentials.createInsecure(), {});
      clients.push(client);
      const response = await callOnce(client, GET_PRODUCT_PATH, request);
      const product = fromBinary(GetProductResponseSchema, response).product;
      if (product?.id !== productId) throw new Error(`${label(kind)}: GetProduct(${productId}) answered product ${product?.id ?? "(none)"}`);
      reference ??= response;
      if (response.length !== reference.length) throw new Error(`${label(kind)} answers ${response.length} B, direct ${reference.length} B: the comparison would be unfair`);
      sizes.push(`${kind} ${response.length} B${response.equals(reference) ? "" : " (different bytes)"}`);
      targets[kind] = { client, path: GET_PRODUCT_PATH, request, responseBytes: response.length };
    }
    print(`payload: request ${request.length} B (GetProductRequest ${productId}); responses ${sizes.join(", ")}`);
    print();
    cells.push(...(await runAlternatingRounds({ kinds: EDGE_PATHS, servers: measured, targets, options, print, label })));
  } finally {
    for (const client of clients) client.close();
    await Promise.all(Object.values(processes).map((server) => server.stop()));
  }

  print();
  print("summary: median over rounds, (min–max) across rounds; server CPU is that of every process on the path");
  for (const line of summaryTable(cells, EDGE_PATHS, options.concurrency, label)) print(line);
  print();
  for (const concurrency of options.concurrency) for (const line of edgeRatioLines(cells, concurrency)) print(line);
  print();
  for (const line of edgeGoalLines(cells)) print(line);

  for (const name of ["gateway", "gateway-cached", "proxy"] as const) {
    const dir = profileDir(name);
    if (dir === undefined) continue;
    const kind: EdgePath = name === "gateway" ? "gateway" : name === "gateway-cached" ? "cached" : "proxy";
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
function ratioToDirect(cells: readonly Cell[], kind: EdgePath, concurrency: number, figure: (cell: Cell) => number): number[] {
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
  for (const kind of ["gateway", "cached", "proxy"] as const) {
    lines.push(
      `  ${label(kind).padEnd(20)} calls/s ${ratio(roundFigures(ratioToDirect(cells, kind, concurrency, callsPerSecond)))}; ` +
        `calls per server CPU ${ratio(roundFigures(ratioToDirect(cells, kind, concurrency, callsPerCpu)))}`,
    );
  }
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
