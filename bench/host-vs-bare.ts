/**
 * Section "host-vs-bare": what the platform host costs over bare grpc-js.
 *
 * Server A is the catalog's GetProduct on the platform host (real handlers,
 * memory store). Server B is a bare grpc-js server answering every call with
 * A's exact response bytes. Each runs in its own process; one load client in
 * this process drives both with the same raw grpc-js client code and the same
 * request bytes, so the only thing that differs between the two is the server.
 *
 * BENCH_HOST_BASELINE=<another checkout of this repository> adds a third
 * server, "baseline": that checkout's platform catalog, measured in the same
 * alternating rounds, for a before/after of a change to the host in one run.
 */
import { availableParallelism, cpus } from "node:os";
import path from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { Client, credentials } from "@grpc/grpc-js";
import { CatalogService, GetProductResponseSchema } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { getProductRequest } from "./bytes-server.js";
import type { LoadTarget } from "./load.js";
import { findMainThreadProfile, summarizeCpuProfile } from "./profile-summary.js";
import type { BenchContext, BenchSection, SectionOutcome } from "./section.js";
import { BARE_METHOD_PATH, SERVER_KINDS, type ServerKind } from "./server-protocol.js";
import { forkServer, type ServerProcess } from "./server-process.js";
import { byRound, callOnce, compareCpu, failureLines, pairedCpu, roundsEstimateMs, runAlternatingRounds, summaryTable, type Cell, type CellKind } from "./server-rounds.js";
import { comparisonCaveat, fixed, formatDifferences, goalLine, roundFigures, roundsCaveat, signed, spreadWarning, type Goal } from "./stats.js";

/** The goal: the platform host spends at most 25 µs more server CPU per call than bare grpc-js, at c=1 and at c=16. */
export const HOST_EXTRA_CPU_GOAL: Goal = { direction: "at most", limit: 25 };
const GOAL_CONCURRENCIES = [1, 16] as const;
/** The extra server of BENCH_HOST_BASELINE. */
const BASELINE = "baseline";
const PLATFORM_METHOD_PATH = `/${CatalogService.typeName}/${CatalogService.method.getProduct.name}`;

export const hostVsBareSection: BenchSection = {
  name: "host-vs-bare",
  estimateMs: (options) => roundsEstimateMs(options, SERVER_KINDS.length + (process.env.BENCH_HOST_BASELINE ? 1 : 0)) + 3000,
  run: runHostVsBareBench,
};

export async function runHostVsBareBench({ options, print, children }: BenchContext): Promise<SectionOutcome> {
  const cpu = cpus()[0]?.model.trim() ?? "unknown CPU";
  print(`## host-vs-bare: catalog GetProduct on the platform host vs a bare grpc-js server`);
  print(`node ${process.version}, ${availableParallelism()} x ${cpu}`);
  print(
    `each server in its own process, one load client (raw grpc-js, one HTTP/2 connection per server) in this one; ` +
      `${options.warmupMs / 1000} s warm-up + ${options.measureMs / 1000} s measured per cell; ` +
      `${options.rounds} round(s), server order alternating per round; figures are medians over the rounds, (min–max) their spread`,
  );
  const caveat = roundsCaveat(options.rounds);
  if (caveat) print(caveat);
  if (options.cpuProfDir !== undefined) print(`servers are CPU-profiled (--cpu-prof): expect lower numbers than without`);

  // Both children load their modules at the same time; the bare one then
  // waits for the bytes it will answer with.
  const profileDir = (kind: ServerKind): string | undefined => (options.cpuProfDir === undefined ? undefined : path.join(options.cpuProfDir, kind));
  const baseline = process.env.BENCH_HOST_BASELINE ? path.resolve(process.env.BENCH_HOST_BASELINE) : undefined;
  const kinds: readonly CellKind[] = baseline ? [...SERVER_KINDS, BASELINE] : SERVER_KINDS;
  if (baseline) print(`baseline: the platform catalog of ${baseline}`);
  const servers: Record<string, ServerProcess> = {
    platform: forkServer(children, "platform", { cpuProfDir: profileDir("platform") }),
    bare: forkServer(children, "bare", { cpuProfDir: profileDir("bare") }),
    ...(baseline ? { [BASELINE]: forkServer(children, "platform", { checkout: baseline }) } : {}),
  };
  const clients: Client[] = [];
  const connect = (port: number): Client => {
    const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure(), {});
    clients.push(client);
    return client;
  };

  const cells: Cell[] = [];
  try {
    const { productId, request } = getProductRequest();

    const platformClient = connect(await servers.platform!.start());
    const platformResponse = await callOnce(platformClient, PLATFORM_METHOD_PATH, request);
    const product = fromBinary(GetProductResponseSchema, platformResponse).product;
    if (product?.id !== productId) throw new Error(`GetProduct(${productId}) answered product ${product?.id ?? "(none)"}`);

    // B answers with A's bytes: same size, same content, no encoding on its side.
    const bareClient = connect(await servers.bare!.start(platformResponse));
    const bareResponse = await callOnce(bareClient, BARE_METHOD_PATH, request);
    print(
      `payload: request ${request.length} B (GetProductRequest ${productId}); ` +
        `response platform ${platformResponse.length} B, bare ${bareResponse.length} B` +
        (bareResponse.equals(platformResponse) ? " (identical bytes)" : " (DIFFERENT)"),
    );
    if (bareResponse.length !== platformResponse.length) throw new Error("the two servers' responses differ in size: the comparison would be unfair");
    print();

    const targets: Record<string, LoadTarget> = {
      platform: { client: platformClient, path: PLATFORM_METHOD_PATH, request, responseBytes: platformResponse.length },
      bare: { client: bareClient, path: BARE_METHOD_PATH, request, responseBytes: bareResponse.length },
    };
    if (servers[BASELINE]) {
      const baselineClient = connect(await servers[BASELINE].start());
      const baselineResponse = await callOnce(baselineClient, PLATFORM_METHOD_PATH, request);
      targets[BASELINE] = { client: baselineClient, path: PLATFORM_METHOD_PATH, request, responseBytes: baselineResponse.length };
    }
    cells.push(...(await runAlternatingRounds({ kinds, servers, targets, options, print })));
  } finally {
    for (const client of clients) client.close();
    await Promise.all(Object.values(servers).map((server) => server.stop()));
  }

  print();
  printSummary(cells, options.concurrency, print, kinds);
  if (baseline) {
    print();
    for (const concurrency of options.concurrency) {
      const cpu = compareCpu(cells, BASELINE, "platform", concurrency);
      print(
        `c=${concurrency}: this platform host spends ${signed(cpu.difference, 0)} µs server CPU per call against the baseline's (${fixed(cpu.other.median, 0)} vs ${fixed(cpu.base.median, 0)}, medians)`,
      );
      print(`  difference round by round (both back to back): ${formatDifferences(pairedCpu(cells, BASELINE, "platform", concurrency), 0)} µs`);
      const warning = spreadWarning(cpu);
      if (warning) print(`  ${warning}`);
    }
  }
  print();
  for (const line of hostGoalLines(cells)) print(line);

  for (const kind of SERVER_KINDS) {
    const dir = profileDir(kind);
    if (dir === undefined) continue;
    print();
    const file = await findMainThreadProfile(dir);
    if (file === undefined) {
      print(`### no CPU profile of the ${kind} server's main thread in ${dir}`);
      continue;
    }
    // The top concurrency only: per-call costs differ by concurrency, and one profile per server is enough to read.
    const top = Math.max(...options.concurrency);
    const windows = cells.filter((cell) => cell.kind === kind && cell.concurrency === top).flatMap((cell) => (cell.window ? [cell.window] : []));
    print(`### CPU profile of the ${kind} server at c=${top}: ${file}`);
    const calls = windows.reduce((sum, window) => sum + window.calls, 0);
    for (const line of await summarizeCpuProfile(file, { windows, calls })) print(line);
  }

  for (const line of failureLines(cells)) print(line);
  return { failedCalls: cells.reduce((sum, cell) => sum + cell.failures, 0) };
}

function printSummary(cells: readonly Cell[], levels: readonly number[], print: (line?: string) => void, kinds: readonly CellKind[]): void {
  print("summary: median over rounds, (min–max) across rounds");
  for (const line of summaryTable(cells, kinds, levels)) print(line);
  print();
  for (const concurrency of levels) {
    const cpu = compareCpu(cells, "bare", "platform", concurrency);
    const callsPerSecond = (kind: ServerKind): number => roundFigures(byRound(cells, kind, concurrency, (cell) => cell.callsPerSecond)).median;
    print(
      `c=${concurrency}: the platform host spends ${signed(cpu.difference, 0)} µs server CPU per call over bare grpc-js ` +
        `(${fixed(cpu.other.median, 0)} vs ${fixed(cpu.base.median, 0)}, medians); platform/bare calls/s = ${fixed((100 * callsPerSecond("platform")) / callsPerSecond("bare"), 1)}%`,
    );
    const paired = pairedCpu(cells, "bare", "platform", concurrency);
    print(`  difference round by round (both sides back to back): ${formatDifferences(paired, 0)} µs`);
    const warning = spreadWarning(cpu);
    if (warning) print(`  ${warning}`);
  }
}

/** One MET/MISSED line per goal concurrency: the median extra server CPU per call of the host over bare grpc-js. */
export function hostGoalLines(cells: readonly Cell[]): string[] {
  return GOAL_CONCURRENCIES.map((concurrency) => {
    const cpu = compareCpu(cells, "bare", "platform", concurrency);
    return goalLine(`platform host extra server CPU per call over bare grpc-js at c=${concurrency}`, HOST_EXTRA_CPU_GOAL, cpu.difference, (value) => `${signed(value, 0)} µs`, comparisonCaveat(cpu));
  });
}
