import type { Logger } from "./logger.js";

export interface ShutdownStep {
  readonly name: string;
  run(): Promise<unknown>;
}

export interface Shutdown {
  /** Steps run in reverse order of adding, like `defer`: add each right after creating what it undoes. */
  add(name: string, run: () => Promise<unknown>): void;
  /** Runs every step once (later calls get the same promise); resolves true when all succeeded. */
  run(reason: string): Promise<boolean>;
  /** Runs on SIGTERM and SIGINT, then exits: 0 when every step succeeded, 1 otherwise. */
  installSignalHandlers(): void;
}

/**
 * Ordered, once-only shutdown. A service adds a step as it creates each
 * resource; they run last-in first-out, so a server that opened its database,
 * started serving, registered and turned SERVING shuts down as NOT_SERVING,
 * deregister, drain, close the database. A failing step is logged and the
 * next one still runs. Start-up that fails half-way runs what it has so far.
 */
export function createShutdown(log: Logger): Shutdown {
  const steps: ShutdownStep[] = [];
  let running: Promise<boolean> | undefined;
  return {
    add(name, run) {
      steps.push({ name, run });
    },
    run(reason) {
      running ??= (async () => {
        log.info({ reason }, "shutting down");
        let ok = true;
        // `position` records the order the steps really ran in: a reader of the
        // log must not depend on lines arriving in order through a busy pipe.
        for (const [index, step] of [...steps].reverse().entries()) {
          const started = Date.now();
          try {
            await step.run();
            log.info({ step: step.name, position: index + 1, durationMs: Date.now() - started }, "shutdown step done");
          } catch (error) {
            ok = false;
            log.error({ err: error, step: step.name, position: index + 1 }, "shutdown step failed");
          }
        }
        log.info({ ok }, "shutdown complete");
        return ok;
      })();
      return running;
    },
    installSignalHandlers() {
      // pino writes asynchronously: exiting without a flush lets the exit
      // handler's synchronous write of the last lines overtake a write still in
      // flight, so the final log lines could arrive out of order.
      const exit = (code: number): void => log.flush(() => process.exit(code));
      const handle = (signal: NodeJS.Signals): void => {
        this.run(signal).then(
          (ok) => exit(ok ? 0 : 1),
          () => exit(1),
        );
      };
      process.once("SIGTERM", handle);
      process.once("SIGINT", handle);
    },
  };
}
