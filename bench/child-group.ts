import { fork, spawn, type ChildProcess } from "node:child_process";

/**
 * Every child process the bench started, so that whatever way the bench ends
 * (done, error, Ctrl-C) they end too. Only these children are ever signalled,
 * each by its own handle.
 */
export interface ChildGroup {
  /** `env` defaults to this process's environment. */
  fork(modulePath: string, args: readonly string[], execArgv: readonly string[], env?: NodeJS.ProcessEnv): ChildProcess;
  /**
   * Runs a command as the leader of a process group of its own (npm and what
   * it starts), output piped; killAll kills the whole group.
   */
  spawnGroup(command: string, args: readonly string[], env: NodeJS.ProcessEnv, cwd: string): ChildProcess;
  /** SIGKILLs every child still alive. Synchronous, so it is safe in an "exit" handler. */
  killAll(): void;
}

export function createChildGroup(): ChildGroup {
  const live = new Set<ChildProcess>();
  const groups = new Set<ChildProcess>();
  return {
    fork(modulePath, args, execArgv, env) {
      const child = fork(modulePath, [...args], {
        execArgv: [...execArgv],
        ...(env ? { env } : {}),
        // stdout/stderr shared with the bench so a server's warning is seen; IPC for marks.
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      });
      live.add(child);
      child.once("exit", () => live.delete(child));
      return child;
    },
    spawnGroup(command, args, env, cwd) {
      const child = spawn(command, [...args], { cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
      groups.add(child);
      child.once("exit", () => groups.delete(child));
      return child;
    },
    killAll() {
      for (const child of groups) {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      groups.clear();
      for (const child of live) {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      }
      live.clear();
    },
  };
}
