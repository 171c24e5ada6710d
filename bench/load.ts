import { Metadata, type Client, type ServiceError } from "@grpc/grpc-js";

/** Bytes in, bytes out: the load client does the same (no) work for every server. */
const identity = (bytes: Buffer): Buffer => bytes;

export interface LoadTarget {
  /** One raw grpc-js client (one HTTP/2 connection) per server. */
  readonly client: Client;
  /** HTTP/2 path of the method to call. */
  readonly path: string;
  /** Encoded request, sent as-is on every call. */
  readonly request: Buffer;
  /** Every response must be exactly this long, or the call counts as failed. */
  readonly responseBytes: number;
  /** Sent with every call (a copy each time); empty when omitted. */
  readonly metadata?: Metadata;
}

export interface LoadPlan {
  /** Calls kept in flight at all times. */
  readonly concurrency: number;
  readonly warmupMs: number;
  readonly measureMs: number;
  /** Deadline of each call. Set because every Meshwork client sets one, and it bounds a hung call. */
  readonly callTimeoutMs: number;
}

/** Called (synchronously) at the edges of the measure window, e.g. to take server CPU marks. */
export interface WindowHooks {
  start(): void;
  end(): void;
}

export interface LoadResult {
  /** Calls that completed inside the measure window. */
  readonly calls: number;
  readonly windowSeconds: number;
  /** Latency of each call completed inside the window, in ns, sorted ascending. */
  readonly latenciesNs: Float64Array;
  /** This (client) process's CPU over the window, in µs. */
  readonly clientCpuUs: number;
  readonly failures: number;
  readonly firstFailure: string | undefined;
}

/**
 * Closed-loop load: `concurrency` workers each issue a call, wait for its
 * answer and issue the next, first for the warm-up, then for the measure
 * window. A call belongs to the window it completes in. Callbacks rather than
 * promises, to keep the client's own cost per call low and identical for
 * every server. The first failure stops the run: a broken server would
 * otherwise be measured at the speed it fails.
 */
export function runLoad(target: LoadTarget, plan: LoadPlan, hooks: WindowHooks): Promise<LoadResult> {
  return new Promise<LoadResult>((resolve) => {
    let phase: "warmup" | "measure" | "drain" = "warmup";
    let windowStart = 0n;
    let windowEnd = 0n;
    let cpuStart: NodeJS.CpuUsage = { user: 0, system: 0 };
    let clientCpuUs = 0;
    let active = plan.concurrency;
    let failures = 0;
    let firstFailure: string | undefined;
    const latencies: number[] = [];

    const finish = (): void => {
      clearTimeout(warmupTimer);
      clearTimeout(measureTimer);
      const sorted = Float64Array.from(latencies).sort();
      resolve({
        calls: latencies.length,
        windowSeconds: windowEnd > windowStart ? Number(windowEnd - windowStart) / 1e9 : 0,
        latenciesNs: sorted,
        clientCpuUs,
        failures,
        firstFailure,
      });
    };

    const endWindow = (): void => {
      if (phase !== "measure") return;
      windowEnd = process.hrtime.bigint();
      const cpu = process.cpuUsage(cpuStart);
      clientCpuUs = cpu.user + cpu.system;
      hooks.end();
      phase = "drain";
    };

    let measureTimer: NodeJS.Timeout | undefined;
    const warmupTimer = setTimeout(() => {
      if (phase !== "warmup") return; // a failure already stopped the run
      windowStart = process.hrtime.bigint();
      cpuStart = process.cpuUsage();
      hooks.start();
      phase = "measure";
      measureTimer = setTimeout(endWindow, plan.measureMs);
    }, plan.warmupMs);

    const issue = (): void => {
      const started = process.hrtime.bigint();
      target.client.makeUnaryRequest<Buffer, Buffer>(
        target.path,
        identity,
        identity,
        target.request,
        target.metadata?.clone() ?? new Metadata(),
        { deadline: Date.now() + plan.callTimeoutMs },
        (error: ServiceError | null, response?: Buffer) => {
          const finished = process.hrtime.bigint();
          if (error || !response || response.length !== target.responseBytes) {
            failures++;
            firstFailure ??= error ? `${error.code} ${error.details || error.message}` : `response of ${response?.length ?? 0} bytes, expected ${target.responseBytes}`;
            if (phase === "measure") endWindow();
            phase = "drain";
          } else if (phase === "measure") {
            latencies.push(Number(finished - started));
          }
          if (phase === "drain") {
            if (--active === 0) finish();
            return;
          }
          issue();
        },
      );
    };
    for (let worker = 0; worker < plan.concurrency; worker++) issue();
  });
}
