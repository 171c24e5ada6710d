/** How every bench section runs: from flags, else BENCH_* environment variables, else defaults. */
export interface BenchOptions {
  /** Warm-up before each measured cell, ms (lets the JIT and the HTTP/2 window settle). */
  readonly warmupMs: number;
  /** Measure window of each cell, ms. */
  readonly measureMs: number;
  /** Calls in flight, one cell per level. */
  readonly concurrency: readonly number[];
  /** Rounds; the order of the servers alternates from one round to the next. */
  readonly rounds: number;
  /** Rounds of the start section (each a first and a warm start and a load run): --rounds when given, else START_DEFAULT_ROUNDS. */
  readonly startRounds: number;
  /** How long the start section runs `npm run load` against the warm start before measuring memory again, ms. */
  readonly startLoadMs: number;
  /** Write V8 CPU profiles of the server children here (and summarize them). */
  readonly cpuProfDir: string | undefined;
  /** Sections to run by name; all when empty. */
  readonly sections: readonly string[];
  readonly help: boolean;
}

/** Defaults: 5 rounds of 1 s warm-up + 2 s measured per cell keep the whole of `npm run bench` near 6.5 minutes on 2 cores. */
export const DEFAULT_ROUNDS = 5;
export const DEFAULT_WARMUP_SECONDS = 1;
export const DEFAULT_MEASURE_SECONDS = 2;
/** A start round takes over a minute (a first start, a warm one, a load run): three by default. */
export const START_DEFAULT_ROUNDS = 3;
/** The figure: memory after 60 s of `npm run load`. */
export const START_DEFAULT_LOAD_SECONDS = 60;
/** A saga round measures this many --seconds windows in one: orders take tens of ms each, and a round needs thousands. */
export const SAGA_WINDOWS_PER_ROUND = 5;
/** A streams read is a few hundred µs: a fraction of --seconds per round gives it thousands of samples. */
export const STREAMS_WINDOW_DIVISOR = 4;

export const USAGE = `usage: npm run bench -- [section...] [options]

  --seconds=N        measure window per cell, s        (BENCH_SECONDS, default ${DEFAULT_MEASURE_SECONDS})
  --warmup=N         warm-up before each cell, s       (BENCH_WARMUP_SECONDS, default ${DEFAULT_WARMUP_SECONDS})
  --concurrency=1,16 calls in flight, one cell each    (BENCH_CONCURRENCY, default 1,16)
  --rounds=N         rounds, server order alternating  (BENCH_ROUNDS, default ${DEFAULT_ROUNDS}; figures are medians over them)
  --cpu-prof[=DIR]   CPU-profile the server processes  (BENCH_CPU_PROF=DIR; default DIR: a new temp dir)
  --load-seconds=N   start section: npm run load time  (BENCH_START_LOAD_SECONDS, default ${START_DEFAULT_LOAD_SECONDS})
  --help

Sections: host-vs-bare, observability, edge, saga, streams (default: all), start. The start section runs ${START_DEFAULT_ROUNDS} rounds unless --rounds is given,
each a first start (empty data dir, no web build) and a warm one followed by --load-seconds of npm run load, in temp dirs. The saga section runs orders in one process and identity, catalog and payments in another (BENCH_SAGA_PROCESSES=1: all four in one),
keeps BENCH_SAGA_CONCURRENCY orders in flight (default 48)
and measures each round for ${SAGA_WINDOWS_PER_ROUND} x --seconds, then an open loop of BENCH_SAGA_OPEN_RATE orders/s (default 150) per round
(BENCH_SAGA_SQL=1 also lists the statements an order runs, per service); the streams section each read for --seconds / ${STREAMS_WINDOW_DIVISOR} per round.
The edge section measures BENCH_EDGE_PATHS (default: direct,gateway,cached,proxy); BENCH_EDGE_BASELINE=<another checkout> adds
that checkout's gateway as path "baseline", for a before/after in one run (cache hits with BENCH_EDGE_BASELINE_CACHED=1);
BENCH_HOST_BASELINE=<another checkout> adds that checkout's platform catalog to host-vs-bare the same way.
With the defaults the whole run takes about 6.5 minutes; start (about 5 minutes) runs only when named: npm run bench -- start.`;

/** A bad value: the message names the flag and the variable. */
export class BenchOptionError extends Error {}

export function parseBenchOptions(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): BenchOptions {
  const flags = new Map<string, string>();
  const sections: string[] = [];
  for (const arg of argv) {
    if (!arg.startsWith("--")) {
      sections.push(arg);
      continue;
    }
    const [name = "", ...rest] = arg.slice(2).split("=");
    flags.set(name, rest.join("="));
  }
  const known = new Set(["seconds", "warmup", "concurrency", "rounds", "cpu-prof", "load-seconds", "help"]);
  for (const name of flags.keys()) {
    if (!known.has(name)) throw new BenchOptionError(`unknown option --${name}\n\n${USAGE}`);
  }

  const raw = (flag: string, variable: string): { value: string; from: string } | undefined => {
    const fromFlag = flags.get(flag);
    if (fromFlag !== undefined) return { value: fromFlag, from: `--${flag}` };
    const fromEnv = env[variable];
    return fromEnv === undefined || fromEnv === "" ? undefined : { value: fromEnv, from: variable };
  };
  const seconds = (flag: string, variable: string, fallback: number, min: number): number => {
    const given = raw(flag, variable);
    if (!given) return fallback * 1000;
    const value = Number(given.value);
    if (!Number.isFinite(value) || value < min || value > 600) {
      throw new BenchOptionError(`${given.from} must be a number of seconds from ${min} to 600 (got "${given.value}")`);
    }
    return Math.round(value * 1000);
  };
  const integer = (given: { value: string; from: string }, min: number, max: number): number => {
    const value = Number(given.value);
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new BenchOptionError(`${given.from} must be whole numbers from ${min} to ${max} (got "${given.value}")`);
    }
    return value;
  };

  const concurrencyRaw = raw("concurrency", "BENCH_CONCURRENCY");
  const concurrency = concurrencyRaw ? concurrencyRaw.value.split(",").map((part) => integer({ value: part.trim(), from: concurrencyRaw.from }, 1, 1024)) : [1, 16];
  const roundsRaw = raw("rounds", "BENCH_ROUNDS");

  const cpuProfFlag = flags.get("cpu-prof");
  const cpuProfEnv = env.BENCH_CPU_PROF;
  // "" means "profile, into a temp dir chosen later".
  const cpuProfDir = cpuProfFlag ?? (cpuProfEnv === undefined || cpuProfEnv === "" ? undefined : cpuProfEnv);

  const rounds = roundsRaw ? integer(roundsRaw, 1, 20) : DEFAULT_ROUNDS;
  return {
    warmupMs: seconds("warmup", "BENCH_WARMUP_SECONDS", DEFAULT_WARMUP_SECONDS, 0),
    measureMs: seconds("seconds", "BENCH_SECONDS", DEFAULT_MEASURE_SECONDS, 0.1),
    concurrency: [...new Set(concurrency)],
    rounds,
    startRounds: roundsRaw ? rounds : START_DEFAULT_ROUNDS,
    startLoadMs: seconds("load-seconds", "BENCH_START_LOAD_SECONDS", START_DEFAULT_LOAD_SECONDS, 1),
    cpuProfDir,
    sections,
    help: flags.has("help"),
  };
}
