import type { Knex } from "knex";
import type { Logger } from "../logger.js";
import type { ProjectionReader } from "./projection-reader.js";

export interface ProjectionLoopOptions {
  readonly db: Knex;
  readonly reader: ProjectionReader;
  /** Pause after catching up (or after a failure) before looking again. */
  readonly pollMs: number;
  readonly log: Logger;
}

export interface ProjectionLoop {
  start(): void;
  /** Stops looking and waits for the batch in hand to commit or roll back. */
  stop(): Promise<void>;
}

/**
 * Keeps an asynchronous projection caught up in the background: catch up,
 * wait `pollMs`, again. Every instance of a service may run one: the
 * checkpoint's row lock makes a second reader wait for the first's batch and
 * then continue from its checkpoint, so nothing is handled twice. The wait
 * is the whole cost: the waiting reader has taken a transaction id (row locks
 * need one), but a younger one than the batch it waits for, so it holds the
 * delivery horizon back no further than that batch already does. A failing
 * batch rolls back with its checkpoint and is tried again after the pause.
 */
export function createProjectionLoop(options: ProjectionLoopOptions): ProjectionLoop {
  const { db, reader, pollMs, log } = options;
  let running: Promise<void> | undefined;
  let stopping = false;
  let wake: (() => void) | undefined;

  const pause = () =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, pollMs);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  const loop = async () => {
    let failing = false;
    while (!stopping) {
      try {
        const handled = await reader.catchUp(db);
        if (handled > 0) log.debug({ projection: reader.name, handled }, "projection caught up");
        if (failing) log.info({ projection: reader.name }, "projection recovered");
        failing = false;
      } catch (error) {
        if (!failing) log.error({ projection: reader.name, err: error }, "projection batch failed; retrying");
        failing = true;
      }
      if (!stopping) await pause();
    }
  };

  return {
    start() {
      running ??= loop();
    },
    async stop() {
      stopping = true;
      wake?.();
      await running;
    },
  };
}
