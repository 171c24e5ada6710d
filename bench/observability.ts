/**
 * Section "observability": what tracing and metrics cost on the hop. The same
 * catalog GetProduct on the platform host twice, each in its own process: once
 * with telemetry off (the default) and once with tracing on (every call
 * sampled: a server span per call continuing the caller's traceparent, batched
 * by the SDK's BatchSpanProcessor and exported over OTLP/HTTP) and RED
 * metrics recorded. One load client drives both with the same bytes and the
 * same traceparent, servers alternating per round. The spans go out as a
 * deployed service sends them, to a sink in a process of its own
 * (otlp-sink.ts). A third server shows what a deployment that samples pays:
 * it starts each call's trace itself (the load sends it no traceparent, as
 * at the edge) and records one in ten. The goal: with
 * them on, server CPU per call is at most 10% above off at c=16, judged on the
 * medians over rounds (never on a best round, whose pick can turn the
 * comparison upside down when the rounds scatter more than the effect).
 */
import { randomBytes } from "node:crypto";
import path from "node:path";
import { Client, credentials, Metadata } from "@grpc/grpc-js";
import { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { getProductRequest } from "./bytes-server.js";
import type { LoadTarget } from "./load.js";
import { findMainThreadProfile, summarizeCpuProfile } from "./profile-summary.js";
import type { BenchContext, BenchSection, SectionOutcome } from "./section.js";
import { forkServer, type ServerProcess } from "./server-process.js";
import type { ServerKind } from "./server-protocol.js";
import { byRound, callOnce, compareCpu, failureLines, pairedCpu, roundsEstimateMs, runAlternatingRounds, summaryTable, type Cell } from "./server-rounds.js";
import { comparisonCaveat, fixed, formatDifferences, goalLine, grouped, roundFigures, roundsCaveat, signed, spreadWarning, type Goal } from "./stats.js";

const KINDS: readonly ServerKind[] = ["platform", "observed", "sampled"];
const LABEL: Record<string, string> = { platform: "telemetry off", observed: "tracing+metrics on", sampled: "1 in 10 traced" };
const label = (kind: string): string => LABEL[kind] ?? kind;
/** The goal: with tracing and metrics on, server CPU per call is at most 10% above off, at c=16 (medians). */
export const TELEMETRY_COST_GOAL: Goal = { direction: "at most", limit: 0.1 };
const GOAL_CONCURRENCY = 16;
const PATH = `/${CatalogService.typeName}/${CatalogService.method.getProduct.name}`;

export const observabilitySection: BenchSection = {
  name: "observability",
  estimateMs: (options) => roundsEstimateMs(options, KINDS.length) + 3000,
  run: runObservabilityBench,
};

async function runObservabilityBench({ options, print, children }: BenchContext): Promise<SectionOutcome> {
  print("## observability: the hop (catalog GetProduct on the platform host) with tracing and metrics off vs on");
  print(
    `each server in its own process, one load client sending a sampled traceparent with every call (none to the 1-in-10 server, which starts its traces); ` +
      `spans exported over OTLP/HTTP to a sink in a process of its own; ` +
      `${options.warmupMs / 1000} s warm-up + ${options.measureMs / 1000} s measured per cell; ${options.rounds} round(s), order alternating; figures are medians over the rounds, (min–max) their spread`,
  );
  const caveat = roundsCaveat(options.rounds);
  if (caveat) print(caveat);
  if (options.cpuProfDir !== undefined) print("servers are CPU-profiled (--cpu-prof): expect lower numbers than without");
  const profileDir = (kind: ServerKind): string | undefined => (options.cpuProfDir === undefined ? undefined : path.join(options.cpuProfDir, kind));
  const servers: Record<string, ServerProcess> = {
    platform: forkServer(children, "platform", { cpuProfDir: profileDir("platform") }),
    observed: forkServer(children, "observed", { cpuProfDir: profileDir("observed") }),
    sampled: forkServer(children, "sampled", { cpuProfDir: profileDir("sampled") }),
  };
  // The observed servers export their spans over OTLP/HTTP to a sink in a process of its own (otlp-sink.ts).
  const sink = forkServer(children, "otlp-sink");
  const clients: Client[] = [];
  let exportRequests: number | undefined;
  const cells: Cell[] = [];
  try {
    const { request } = getProductRequest();
    // A caller mid-trace: the server extracts this parent and makes a child span.
    const metadata = new Metadata();
    metadata.set("traceparent", `00-${randomBytes(16).toString("hex")}-${randomBytes(8).toString("hex")}-01`);
    const targets: Record<string, LoadTarget> = {};
    const otlpEndpoint = `http://127.0.0.1:${await sink.start()}`;
    for (const kind of KINDS) {
      const port = await servers[kind]!.start(undefined, kind === "platform" ? {} : { otlpEndpoint });
      const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure(), {});
      clients.push(client);
      const response = await callOnce(client, PATH, request);
      // The sampled server starts every trace itself: no traceparent, as calls arrive at the edge.
      targets[kind] = { client, path: PATH, request, responseBytes: response.length, metadata: kind === "sampled" ? new Metadata() : metadata };
    }
    if (KINDS.some((kind) => targets[kind]!.responseBytes !== targets.platform!.responseBytes)) throw new Error("the servers answer with different sizes: the comparison would be unfair");
    print();
    cells.push(...(await runAlternatingRounds({ kinds: KINDS, servers, targets, options, print, label })));
  } finally {
    for (const client of clients) client.close();
    await Promise.all(KINDS.map((kind) => servers[kind]!.stop()));
    // After the servers: their shutdown exports what they still held.
    exportRequests = (await sink.mark().catch(() => undefined))?.served;
    await sink.stop();
  }
  if (exportRequests !== undefined) print(`the OTLP sink took ${grouped(exportRequests)} export requests (a batch is at most 512 spans)`);

  print();
  print("summary: median over rounds, (min–max) across rounds");
  for (const line of summaryTable(cells, KINDS, options.concurrency, label)) print(line);
  print();
  for (const concurrency of options.concurrency) {
    const cpu = compareCpu(cells, "platform", "observed", concurrency);
    const callsPerSecond = (kind: ServerKind): number => roundFigures(byRound(cells, kind, concurrency, (cell) => cell.callsPerSecond)).median;
    print(
      `c=${concurrency}: tracing+metrics add ${signed(cpu.difference, 0)} µs server CPU per call (${signed(100 * cpu.relativeDifference, 1)}%; ` +
        `${fixed(cpu.other.median, 0)} vs ${fixed(cpu.base.median, 0)}, medians); on/off calls/s = ${fixed((100 * callsPerSecond("observed")) / callsPerSecond("platform"), 1)}%`,
    );
    const paired = pairedCpu(cells, "platform", "observed", concurrency);
    print(`  difference round by round (both sides back to back): ${formatDifferences(paired, 0)} µs`);
    const warning = spreadWarning(cpu);
    if (warning) print(`  ${warning}`);
    const sampled = compareCpu(cells, "platform", "sampled", concurrency);
    print(
      `c=${concurrency}: with 1 trace in 10 recorded, tracing+metrics add ${signed(sampled.difference, 0)} µs (${signed(100 * sampled.relativeDifference, 1)}%; ` +
        `${fixed(sampled.other.median, 0)} vs ${fixed(sampled.base.median, 0)}, medians)`,
    );
    const sampledWarning = spreadWarning(sampled);
    if (sampledWarning) print(`  ${sampledWarning}`);
  }
  print();
  print(telemetryGoalLine(cells));
  for (const kind of KINDS) {
    const dir = profileDir(kind);
    if (dir === undefined) continue;
    const file = await findMainThreadProfile(dir);
    print();
    if (file === undefined) {
      print(`### no CPU profile of the ${label(kind)} server in ${dir}`);
      continue;
    }
    const top = Math.max(...options.concurrency);
    const windows = cells.filter((cell) => cell.kind === kind && cell.concurrency === top).flatMap((cell) => (cell.window ? [cell.window] : []));
    print(`### CPU profile of the ${label(kind)} server at c=${top}: ${file}`);
    for (const line of await summarizeCpuProfile(file, { windows, calls: windows.reduce((sum, window) => sum + window.calls, 0) })) print(line);
  }
  for (const line of failureLines(cells)) print(line);
  return { failedCalls: cells.reduce((sum, cell) => sum + cell.failures, 0) };
}

/** MET/MISSED: the extra server CPU per call with telemetry on, as a share of off, medians over rounds at c=16. */
export function telemetryGoalLine(cells: readonly Cell[]): string {
  const cpu = compareCpu(cells, "platform", "observed", GOAL_CONCURRENCY);
  return goalLine(`tracing+metrics extra server CPU per call at c=${GOAL_CONCURRENCY}`, TELEMETRY_COST_GOAL, cpu.relativeDifference, (share) => `${signed(100 * share, 1)}%`, comparisonCaveat(cpu));
}
