/**
 * What host-vs-bare and observability share: servers in child processes,
 * measured cell by cell (one server at one concurrency for one window) in
 * rounds whose server order alternates, then summarized as medians over the
 * rounds with their min–max spread. Server CPU per call, from the child's own
 * process.cpuUsage() at the edges of the window (IPC marks), is the main
 * figure: it does not depend on how fast the load client on the same two
 * cores happens to be, which calls/s does.
 */
import { type Client, Metadata, type ServiceError } from "@grpc/grpc-js";
import { runLoad, type LoadPlan, type LoadTarget } from "./load.js";
import type { BenchOptions } from "./options.js";
import type { ProfileWindow } from "./profile-summary.js";
import type { ServerKind } from "./server-protocol.js";
import { usageBetween, type ServerMark, type ServerProcess } from "./server-process.js";
import { compareRounds, fixed, formatRounds, formatTable, grouped, pairedDifferences, percent, percentile, roundFigures, roundOrder, type Comparison, type RoundFigures } from "./stats.js";

const CALL_TIMEOUT_MS = 10_000;

/**
 * What a cell measured: a server (ServerKind), or a path through several
 * (the edge section's "gateway": gateway and catalog processes).
 */
export type CellKind = ServerKind | (string & {});

/**
 * The processes a cell measures: calls are counted by the first (the one the
 * load client calls), CPU is summed over all of them (every process a call
 * passes through).
 */
export type Measured = ServerProcess | readonly ServerProcess[];

export interface Cell {
  readonly kind: CellKind;
  readonly concurrency: number;
  readonly round: number;
  readonly callsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Server CPU per call, µs, from the server's own counters. */
  readonly serverCpuUsPerCall: number;
  /**
   * Wall time of the main thread's GC pauses per call, µs: a sign of the
   * process's GC state beside the CPU figure, not a part of it (a pause the
   * OS descheduled counts whole; the scavenger's helper threads show only
   * in the CPU figure).
   */
  readonly serverGcPauseUsPerCall: number;
  /** The kernel's part of serverCpuUsPerCall (system time), summed like it over the path's processes. */
  readonly serverSystemUsPerCall: number;
  /** Server CPU over the window as a share of one core. */
  readonly serverCore: number;
  readonly clientCpuUsPerCall: number;
  readonly clientCore: number;
  readonly failures: number;
  readonly firstFailure: string | undefined;
  /** The measure window on the server's clock, and the calls it served in it (for --cpu-prof). */
  readonly window: (ProfileWindow & { readonly calls: number }) | undefined;
}

export function callOnce(client: Client, path: string, request: Buffer, metadata?: Metadata): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    client.makeUnaryRequest<Buffer, Buffer>(
      path,
      (bytes) => bytes,
      (bytes) => bytes,
      request,
      metadata?.clone() ?? new Metadata(),
      { deadline: Date.now() + CALL_TIMEOUT_MS },
      (error: ServiceError | null, response?: Buffer) => {
        if (error) reject(new Error(`probe call ${path} failed: ${error.code} ${error.details || error.message}`, { cause: error }));
        else if (!response) reject(new Error(`probe call ${path} returned no response`));
        else resolve(response);
      },
    );
  });
}

function measuredProcesses(measured: Measured): readonly ServerProcess[] {
  return Array.isArray(measured) ? measured : [measured as ServerProcess];
}

export async function measureCell(kind: CellKind, round: number, measured: Measured, target: LoadTarget, plan: LoadPlan): Promise<Cell> {
  const servers = measuredProcesses(measured);
  let startMarks: Promise<ServerMark[]> | undefined;
  let endMarks: Promise<ServerMark[]> | undefined;
  // A mark may reject if the child dies; the load then fails too and says so.
  const quiet = (marks: Promise<ServerMark[]>): Promise<ServerMark[]> => {
    marks.catch(() => undefined);
    return marks;
  };
  const result = await runLoad(target, plan, {
    start: () => {
      startMarks = quiet(Promise.all(servers.map((server) => server.mark())));
    },
    end: () => {
      endMarks = quiet(Promise.all(servers.map((server) => server.mark())));
    },
  });
  let serverCpuUsPerCall = Number.NaN;
  let serverCore = Number.NaN;
  let serverGcPauseUsPerCall = Number.NaN;
  let serverSystemUsPerCall = Number.NaN;
  let window: Cell["window"];
  if (result.failures === 0 && startMarks && endMarks) {
    const from = await startMarks;
    const to = await endMarks;
    const usages = from.map((mark, index) => usageBetween(mark, to[index]!));
    const front = usages[0]!;
    const cpuUs = usages.reduce((sum, usage) => sum + usage.cpuUs, 0);
    serverCpuUsPerCall = cpuUs / Math.max(1, front.calls);
    serverGcPauseUsPerCall = usages.reduce((sum, usage) => sum + usage.gcPauseUs, 0) / Math.max(1, front.calls);
    serverSystemUsPerCall = usages.reduce((sum, usage) => sum + usage.systemUs, 0) / Math.max(1, front.calls);
    // Cores of all the processes together: above 100% when a path spans two.
    serverCore = cpuUs / 1000 / Math.max(1, front.wallMs);
    window = { fromUs: front.fromUs, toUs: front.toUs, calls: front.calls };
  }
  return {
    kind,
    concurrency: plan.concurrency,
    round,
    callsPerSecond: result.windowSeconds > 0 ? result.calls / result.windowSeconds : Number.NaN,
    p50Ms: percentile(result.latenciesNs, 50) / 1e6,
    p99Ms: percentile(result.latenciesNs, 99) / 1e6,
    serverCpuUsPerCall,
    serverGcPauseUsPerCall,
    serverSystemUsPerCall,
    serverCore,
    clientCpuUsPerCall: result.clientCpuUs / Math.max(1, result.calls),
    clientCore: result.windowSeconds > 0 ? result.clientCpuUs / 1e6 / result.windowSeconds : Number.NaN,
    failures: result.failures,
    firstFailure: result.firstFailure,
    window,
  };
}

export function progressLine(cell: Cell, rounds: number, label: string = cell.kind): string {
  return (
    `round ${cell.round}/${rounds}  c=${String(cell.concurrency).padEnd(3)} ${label.padEnd(8)}  ` +
    `server ${fixed(cell.serverCpuUsPerCall, 0).padStart(4)} µs CPU/call (kernel ${fixed(cell.serverSystemUsPerCall, 0).padStart(3)}, GC ${fixed(cell.serverGcPauseUsPerCall, 0).padStart(3)})  ${grouped(cell.callsPerSecond).padStart(7)} calls/s  ` +
    `p50 ${fixed(cell.p50Ms, 3)} ms  p99 ${fixed(cell.p99Ms, 3)} ms` +
    (cell.failures > 0 ? `  FAILED ${cell.failures}` : "")
  );
}

export interface RoundsPlan {
  readonly kinds: readonly CellKind[];
  readonly servers: Readonly<Record<string, Measured>>;
  readonly targets: Readonly<Record<string, LoadTarget>>;
  readonly options: BenchOptions;
  readonly print: (line?: string) => void;
  readonly label?: (kind: CellKind) => string;
}

/**
 * Unmeasured load on each server before round 1, ms: the per-cell warm-up is
 * short, and without this the first round alone pays for the JIT compiling
 * the servers' paths, which widens the spread for no reason.
 */
export function primeMs(options: BenchOptions): number {
  return Math.max(2000, 2 * options.warmupMs);
}

/** What runAlternatingRounds takes for these servers, ms. */
export function roundsEstimateMs(options: BenchOptions, servers: number): number {
  return servers * primeMs(options) + options.rounds * options.concurrency.length * servers * (options.warmupMs + options.measureMs);
}

/**
 * Every cell of every round: for each round, each concurrency, each server in the round's order.
 *
 * After the warm-up, every server process is given one full garbage
 * collection, so all of them are measured in the state a long-running
 * server is in. Why it matters: V8 (Node 20, 22 and 24 alike) promotes
 * everything a Map or Set that lives in the old generation and keeps
 * changing still points to (a replaced backing table keeps a link to
 * its successor), and Node's HTTP/2 session keeps its streams in such a
 * Map. Before a server's first full collection under load that table is
 * young and each call's objects die young; after it, every stream's
 * objects are promoted (about 1.5 MB per scavenge here, plain node:http2
 * or grpc-js alike) and the server pays 20 to 50 µs of GC per call more.
 * When that first collection happens is chance (startup garbage, an idle
 * spell), so without this the two sides of a comparison could be in
 * different states, and were: two identical servers measured +11 and
 * +30 µs apart.
 */
export async function runAlternatingRounds({ kinds, servers, targets, options, print, label }: RoundsPlan): Promise<Cell[]> {
  const top = Math.max(...options.concurrency);
  for (const kind of kinds) {
    const plan: LoadPlan = { concurrency: top, warmupMs: primeMs(options), measureMs: 1, callTimeoutMs: CALL_TIMEOUT_MS };
    const primed = await runLoad(targets[kind]!, plan, { start: () => undefined, end: () => undefined });
    if (primed.failures > 0) throw new Error(`${kind} server failed while warming up: ${primed.firstFailure ?? "?"}`);
  }
  const processes = new Set(kinds.flatMap((kind) => measuredProcesses(servers[kind]!)));
  const unanswered = (await Promise.all([...processes].map(async (server) => ((await server.collect()) ? [] : [server.kind])))).flat();
  print(
    `(each server warmed up for ${primeMs(options) / 1000} s at c=${top} before round 1, unmeasured, then given a full garbage collection: ` +
      `measured as a long-running server is, see server-rounds.ts)`,
  );
  if (unanswered.length > 0) print(`(no full collection in: ${unanswered.join(", ")}: a child of an older checkout; its GC state is left to chance)`);
  const width = Math.max(...kinds.map((kind) => (label?.(kind) ?? kind).length));
  const cells: Cell[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    for (const concurrency of options.concurrency) {
      for (const kind of roundOrder(kinds, round)) {
        const plan: LoadPlan = { concurrency, warmupMs: options.warmupMs, measureMs: options.measureMs, callTimeoutMs: CALL_TIMEOUT_MS };
        const cell = await measureCell(kind, round, servers[kind]!, targets[kind]!, plan);
        cells.push(cell);
        print(progressLine(cell, options.rounds, (label?.(kind) ?? kind).padEnd(width)));
      }
    }
  }
  return cells;
}

/** One figure of a server at a concurrency, round by round; a failed round gives NaN (left out of medians). */
export function byRound(cells: readonly Cell[], kind: CellKind, concurrency: number, figure: (cell: Cell) => number): number[] {
  return cells.filter((cell) => cell.kind === kind && cell.concurrency === concurrency).map((cell) => (cell.failures > 0 ? Number.NaN : figure(cell)));
}

/** Server CPU µs per call of `other` against `base` at a concurrency, medians over rounds. */
export function compareCpu(cells: readonly Cell[], base: CellKind, other: CellKind, concurrency: number): Comparison {
  const cpu = (cell: Cell): number => cell.serverCpuUsPerCall;
  return compareRounds(byRound(cells, base, concurrency, cpu), byRound(cells, other, concurrency, cpu));
}

/** Server CPU µs per call of `other` minus `base`, round by round at a concurrency: median and min–max. */
export function pairedCpu(cells: readonly Cell[], base: CellKind, other: CellKind, concurrency: number): RoundFigures {
  const cpu = (cell: Cell): number => cell.serverCpuUsPerCall;
  return pairedDifferences(byRound(cells, base, concurrency, cpu), byRound(cells, other, concurrency, cpu));
}

/** The summary table: medians over rounds with the min–max spread in brackets; server CPU first. */
export function summaryTable(cells: readonly Cell[], kinds: readonly CellKind[], levels: readonly number[], label: (kind: CellKind) => string = (kind) => kind): string[] {
  const rows: string[][] = [];
  for (const concurrency of levels) {
    for (const kind of kinds) {
      const of = (figure: (cell: Cell) => number) => roundFigures(byRound(cells, kind, concurrency, figure));
      rows.push([
        label(kind),
        String(concurrency),
        formatRounds(
          of((cell) => cell.serverCpuUsPerCall),
          0,
        ),
        fixed(of((cell) => cell.serverSystemUsPerCall).median, 0),
        fixed(of((cell) => cell.serverGcPauseUsPerCall).median, 1),
        formatRounds(
          of((cell) => cell.callsPerSecond),
          0,
          (value) => grouped(value),
        ),
        fixed(of((cell) => cell.p50Ms).median, 3),
        fixed(of((cell) => cell.p99Ms).median, 3),
        percent(of((cell) => cell.serverCore).median),
        fixed(of((cell) => cell.clientCpuUsPerCall).median, 0),
        percent(of((cell) => cell.clientCore).median),
      ]);
    }
  }
  return formatTable(
    ["server", "conc", "server µs CPU/call (min–max)", "of it kernel µs", "GC pauses µs", "calls/s (min–max)", "p50 ms", "p99 ms", "server core", "client µs CPU/call", "client core"],
    rows,
  );
}

/** The cells that failed, one line each. */
export function failureLines(cells: readonly Cell[]): string[] {
  return cells.filter((cell) => cell.failures > 0).map((cell) => `FAILED: ${cell.kind} c=${cell.concurrency} round ${cell.round}: ${cell.failures} call(s), first: ${cell.firstFailure ?? "?"}`);
}
