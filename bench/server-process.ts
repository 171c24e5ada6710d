import type { ChildProcess } from "node:child_process";
import path from "node:path";
import type { ChildGroup } from "./child-group.js";
import type { FromChild, ServerKind, StartSettings, ToChild } from "./server-protocol.js";

/** CPU and call counters of a server child at one instant. */
export interface ServerMark {
  readonly cpuUs: number;
  /** The part of cpuUs spent in the kernel (system time): sockets, epoll, page faults. */
  readonly systemUs: number;
  readonly served: number;
  readonly atMs: number;
  readonly monotonicUs: number;
  /** Wall time of the main thread's GC pauses so far, µs; NaN from a child that does not report them. */
  readonly gcPauseUs: number;
}

/** What a server used between two marks. */
export interface ServerUsage {
  readonly cpuUs: number;
  readonly systemUs: number;
  /** Wall time of the main thread's GC pauses in the window, µs. */
  readonly gcPauseUs: number;
  readonly calls: number;
  readonly wallMs: number;
  /** The window on the child's monotonic clock, µs. */
  readonly fromUs: number;
  readonly toUs: number;
}

export function usageBetween(from: ServerMark, to: ServerMark): ServerUsage {
  return {
    cpuUs: to.cpuUs - from.cpuUs,
    systemUs: to.systemUs - from.systemUs,
    gcPauseUs: to.gcPauseUs - from.gcPauseUs,
    calls: to.served - from.served,
    wallMs: to.atMs - from.atMs,
    fromUs: from.monotonicUs,
    toUs: to.monotonicUs,
  };
}

/** The parent's handle on one forked server. */
export interface ServerProcess {
  readonly kind: ServerKind;
  /** Starts serving and resolves with the port. */
  start(response?: Uint8Array, settings?: StartSettings): Promise<number>;
  mark(): Promise<ServerMark>;
  /**
   * A full garbage collection in the child. False when the child did not
   * answer within 5 s (a child from an older checkout knows no such message).
   */
  collect(): Promise<boolean>;
  /** Asks the child to shut down and exit; kills it if it has not within 5 s. */
  stop(): Promise<void>;
}

export interface ForkServerOptions {
  /**
   * Write V8 CPU profiles of the child to this directory. Node's default file
   * names are kept: they carry the thread id, and tsx runs a loader thread
   * whose profile would otherwise overwrite the main thread's.
   */
  readonly cpuProfDir?: string | undefined;
  /** How long start() may take. */
  readonly startTimeoutMs?: number;
  /** Another checkout of this repository to run the server from (its bench/server-child.ts): a before/after in one run. */
  readonly checkout?: string | undefined;
}

const CHILD_ENTRY = path.join(import.meta.dirname, "server-child.ts");

export function forkServer(children: ChildGroup, kind: ServerKind, options: ForkServerOptions = {}): ServerProcess {
  // The same execArgv as this process, so the child runs TypeScript through
  // tsx exactly as the parent does.
  // --expose-gc: the rounds start every server from a full collection (server-rounds.ts).
  // A parent without tsx's loader (a vitest worker) still forks a TypeScript child.
  const execArgv = [...process.execArgv, ...(process.execArgv.some((arg) => arg.includes("tsx")) ? [] : ["--import", "tsx"]), "--expose-gc"];
  if (options.cpuProfDir !== undefined) {
    execArgv.push("--cpu-prof", `--cpu-prof-dir=${options.cpuProfDir}`);
  }
  const entry = options.checkout === undefined ? CHILD_ENTRY : path.join(options.checkout, "bench", "server-child.ts");
  const child: ChildProcess = children.fork(entry, [kind], execArgv);

  let nextMark = 0;
  const pendingMarks = new Map<number, { resolve(mark: ServerMark): void; reject(error: Error): void }>();
  const pendingCollects = new Map<number, (answered: boolean) => void>();
  let pendingStart: { resolve(port: number): void; reject(error: Error): void } | undefined;
  let exited: Error | undefined;

  const failAll = (error: Error): void => {
    pendingStart?.reject(error);
    pendingStart = undefined;
    for (const pending of pendingMarks.values()) pending.reject(error);
    pendingMarks.clear();
    for (const answer of pendingCollects.values()) answer(false);
    pendingCollects.clear();
  };

  child.on("message", (message: FromChild) => {
    switch (message.type) {
      case "ready":
        pendingStart?.resolve(message.port);
        pendingStart = undefined;
        return;
      case "failed":
        failAll(new Error(`${kind} server failed to start: ${message.message}`));
        return;
      case "mark": {
        const pending = pendingMarks.get(message.id);
        pendingMarks.delete(message.id);
        pending?.resolve({
          cpuUs: message.cpuUserUs + message.cpuSystemUs,
          systemUs: message.cpuSystemUs,
          served: message.served,
          atMs: message.atMs,
          monotonicUs: message.monotonicUs,
          gcPauseUs: message.gcPauseUs ?? Number.NaN,
        });
        return;
      }
      case "collected":
        pendingCollects.get(message.id)?.(true);
        pendingCollects.delete(message.id);
        return;
    }
  });
  child.once("exit", (code, signal) => {
    exited = new Error(`${kind} server exited (${signal ?? `code ${code}`})`);
    failAll(exited);
  });
  child.once("error", (error) => failAll(error));

  const send = (message: ToChild): void => {
    if (exited) throw exited;
    child.send(message);
  };

  return {
    kind,
    start(response, settings) {
      return new Promise<number>((resolve, reject) => {
        const timeoutMs = options.startTimeoutMs ?? 30_000;
        const timer = setTimeout(() => reject(new Error(`${kind} server did not start within ${timeoutMs} ms`)), timeoutMs);
        pendingStart = {
          resolve: (port) => {
            clearTimeout(timer);
            resolve(port);
          },
          reject: (error) => {
            clearTimeout(timer);
            reject(error);
          },
        };
        try {
          send({
            type: "start",
            ...(response === undefined ? {} : { responseBase64: Buffer.from(response).toString("base64") }),
            ...(settings === undefined ? {} : { settings }),
          });
        } catch (error) {
          pendingStart.reject(error as Error);
        }
      });
    },
    mark() {
      return new Promise<ServerMark>((resolve, reject) => {
        const id = nextMark++;
        pendingMarks.set(id, { resolve, reject });
        try {
          send({ type: "mark", id });
        } catch (error) {
          pendingMarks.delete(id);
          reject(error as Error);
        }
      });
    },
    collect() {
      return new Promise<boolean>((resolve) => {
        const id = nextMark++;
        const timer = setTimeout(() => {
          pendingCollects.delete(id);
          resolve(false);
        }, 5000);
        pendingCollects.set(id, (answered) => {
          clearTimeout(timer);
          resolve(answered);
        });
        try {
          send({ type: "collect", id });
        } catch {
          pendingCollects.get(id)?.(false);
          pendingCollects.delete(id);
        }
      });
    },
    async stop() {
      if (exited) return;
      const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      try {
        send({ type: "stop" });
      } catch {
        return;
      }
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await gone;
      clearTimeout(timer);
    },
  };
}
