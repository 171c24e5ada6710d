import { fork, type ChildProcess } from "node:child_process";

/**
 * Every child process the bench started, so that whatever way the bench ends
 * (done, error, Ctrl-C) they end too. Only these children are ever signalled,
 * each by its own handle.
 */
export interface ChildGroup {
  fork(modulePath: string, args: readonly string[], execArgv: readonly string[]): ChildProcess;
  /** SIGKILLs every child still alive. Synchronous, so it is safe in an "exit" handler. */
  killAll(): void;
}

export function createChildGroup(): ChildGroup {
  const live = new Set<ChildProcess>();
  return {
    fork(modulePath, args, execArgv) {
      const child = fork(modulePath, [...args], {
        execArgv: [...execArgv],
        // stdout/stderr shared with the bench so a server's warning is seen; IPC for marks.
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      });
      live.add(child);
      child.once("exit", () => live.delete(child));
      return child;
    },
    killAll() {
      for (const child of live) {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      }
      live.clear();
    },
  };
}
