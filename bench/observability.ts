/**
 * Section "observability": what tracing and metrics cost on the hop. The same
 * catalog GetProduct on the platform host twice, each in its own process: once
 * with telemetry off (the default) and once with tracing on (every call
 * sampled: a server span per call continuing the caller's traceparent, batched
 * by the SDK's BatchSpanProcessor to an exporter that drops them) and RED
 * metrics recorded. One load client drives both with the same bytes and the
 * same traceparent, servers alternating per round. The target: with
 * them on, calls/s stays within 15% of off.
 */
import { randomBytes } from "node:crypto";
import path from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { Client, credentials, Metadata } from "@grpc/grpc-js";
import { CatalogService, GetProductRequestSchema } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { demoCatalog } from "../services/catalog/src/demo-catalog.js";
import { callOnce, measureCell, progressLine, type Cell } from "./host-vs-bare.js";
import type { LoadPlan, LoadTarget } from "./load.js";
import { findMainThreadProfile, summarizeCpuProfile } from "./profile-summary.js";
import type { BenchContext, BenchSection, SectionOutcome } from "./section.js";
import { forkServer, type ServerProcess } from "./server-process.js";
import type { ServerKind } from "./server-protocol.js";
import { fixed, formatTable, grouped, percent } from "./stats.js";

const KINDS: readonly ServerKind[] = ["platform", "observed"];
const LABEL: Record<string, string> = { platform: "telemetry off", observed: "tracing+metrics on" };
/** The target: on is within 15% of off. */
const TARGET_RATIO = 0.85;
const CALL_TIMEOUT_MS = 10_000;
const PATH = `/${CatalogService.typeName}/${CatalogService.method.getProduct.name}`;

export const observabilitySection: BenchSection = {
  name: "observability",
  estimateMs: (options) => options.rounds * options.concurrency.length * KINDS.length * (options.warmupMs + options.measureMs) + 3000,
  run: runObservabilityBench,
};

async function runObservabilityBench({ options, print, children }: BenchContext): Promise<SectionOutcome> {
  print("## observability: the hop (catalog GetProduct on the platform host) with tracing and metrics off vs on");
  print(
    `each server in its own process, one load client sending a sampled traceparent with every call; ` +
      `${options.warmupMs / 1000} s warm-up + ${options.measureMs / 1000} s measured per cell; ${options.rounds} round(s), order alternating`,
  );
  if (options.cpuProfDir !== undefined) print("servers are CPU-profiled (--cpu-prof): expect lower numbers than without");
  const profileDir = (kind: ServerKind): string | undefined => (options.cpuProfDir === undefined ? undefined : path.join(options.cpuProfDir, kind));
  const servers: Record<string, ServerProcess> = {
    platform: forkServer(children, "platform", { cpuProfDir: profileDir("platform") }),
    observed: forkServer(children, "observed", { cpuProfDir: profileDir("observed") }),
  };
  const clients: Client[] = [];
  const cells: Cell[] = [];
  try {
    const productId = demoCatalog[0]?.id;
    if (productId === undefined) throw new Error("the demo catalog is empty: nothing to read");
    const request = Buffer.from(toBinary(GetProductRequestSchema, create(GetProductRequestSchema, { productId })));
    // A caller mid-trace: the server extracts this parent and makes a child span.
    const metadata = new Metadata();
    metadata.set("traceparent", `00-${randomBytes(16).toString("hex")}-${randomBytes(8).toString("hex")}-01`);
    const targets: Record<string, LoadTarget> = {};
    for (const kind of KINDS) {
      const client = new Client(`127.0.0.1:${await servers[kind]!.start()}`, credentials.createInsecure(), {});
      clients.push(client);
      const response = await callOnce(client, PATH, request);
      targets[kind] = { client, path: PATH, request, responseBytes: response.length, metadata };
    }
    if (targets.platform!.responseBytes !== targets.observed!.responseBytes) throw new Error("the two servers answer with different sizes: the comparison would be unfair");
    print();
    for (let round = 1; round <= options.rounds; round++) {
      const order = round % 2 === 1 ? KINDS : [...KINDS].reverse();
      for (const concurrency of options.concurrency) {
        for (const kind of order) {
          const plan: LoadPlan = { concurrency, warmupMs: options.warmupMs, measureMs: options.measureMs, callTimeoutMs: CALL_TIMEOUT_MS };
          const cell = await measureCell(kind, round, servers[kind]!, targets[kind]!, plan);
          cells.push(cell);
          print(progressLine(cell, options.rounds));
        }
      }
    }
  } finally {
    for (const client of clients) client.close();
    await Promise.all(KINDS.map((kind) => servers[kind]!.stop()));
  }

  print();
  const best = (kind: ServerKind, concurrency: number): Cell | undefined =>
    cells
      .filter((cell) => cell.kind === kind && cell.concurrency === concurrency && cell.failures === 0)
      .reduce<Cell | undefined>((found, cell) => (!found || cell.callsPerSecond > found.callsPerSecond ? cell : found), undefined);
  const rows: string[][] = [];
  for (const concurrency of options.concurrency) {
    for (const kind of KINDS) {
      const cell = best(kind, concurrency);
      rows.push([
        LABEL[kind]!,
        String(concurrency),
        grouped(cell?.callsPerSecond ?? Number.NaN),
        fixed(cell?.p50Ms ?? Number.NaN, 3),
        fixed(cell?.p99Ms ?? Number.NaN, 3),
        fixed(cell?.serverCpuUsPerCall ?? Number.NaN, 0),
        percent(cell?.serverCore ?? Number.NaN),
      ]);
    }
  }
  print("summary: best round per cell");
  for (const line of formatTable(["server", "conc", "calls/s", "p50 ms", "p99 ms", "server µs CPU/call", "server core"], rows)) print(line);
  print();
  for (const concurrency of options.concurrency) {
    const off = best("platform", concurrency);
    const on = best("observed", concurrency);
    if (!off || !on) {
      print(`c=${concurrency}: no complete pair of runs`);
      continue;
    }
    const ratio = on.callsPerSecond / off.callsPerSecond;
    print(
      `c=${concurrency}: on/off calls/s = ${fixed(100 * ratio, 1)}% ` +
        `(target >= ${100 * TARGET_RATIO}%: ${ratio >= TARGET_RATIO ? "MET" : "MISSED"}); ` +
        `tracing+metrics add ${fixed(on.serverCpuUsPerCall - off.serverCpuUsPerCall, 0)} µs server CPU per call ` +
        `(${fixed(on.serverCpuUsPerCall, 0)} vs ${fixed(off.serverCpuUsPerCall, 0)})`,
    );
  }
  for (const kind of KINDS) {
    const dir = profileDir(kind);
    if (dir === undefined) continue;
    const file = await findMainThreadProfile(dir);
    print();
    if (file === undefined) {
      print(`### no CPU profile of the ${LABEL[kind]} server in ${dir}`);
      continue;
    }
    const top = Math.max(...options.concurrency);
    const windows = cells.filter((cell) => cell.kind === kind && cell.concurrency === top).flatMap((cell) => (cell.window ? [cell.window] : []));
    print(`### CPU profile of the ${LABEL[kind]} server at c=${top}: ${file}`);
    for (const line of await summarizeCpuProfile(file, { windows, calls: windows.reduce((sum, window) => sum + window.calls, 0) })) print(line);
  }
  const failed = cells.reduce((sum, cell) => sum + cell.failures, 0);
  for (const cell of cells.filter((c) => c.failures > 0)) print(`FAILED: ${cell.kind} c=${cell.concurrency} round ${cell.round}: ${cell.failures} call(s), first: ${cell.firstFailure ?? "?"}`);
  return { failedCalls: failed };
}
