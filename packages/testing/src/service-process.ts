/**
 * A service's main.ts run as its own process, as operators run it: for tests
 * of start-up, signals and graceful shutdown. Reads the JSON log lines, knows
 * the port from the "<name> serving" line, and stops with a real SIGTERM.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import type { TestScope } from "./scope.js";

export interface ServiceProcess {
  /** The port from the "<name> serving" log line. */
  readonly port: number;
  /** Every JSON log line so far. */
  readonly lines: readonly Record<string, unknown>[];
  /** SIGTERM, then the exit code once the process exited and its output ended. */
  terminate(): Promise<number | null>;
  /** The "shutdown step done" steps in the order they ran (by their recorded position). */
  shutdownSteps(): string[];
}

export async function startServiceProcess(t: TestScope, options: { mainFile: string; name: string; env: Record<string, string> }): Promise<ServiceProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", options.mainFile], {
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  t.onTestFinished(async () => {
    await child.kill("SIGKILL");
  });
  const lines: Record<string, unknown>[] = [];
  const reader = createInterface({ input: child.stdout });
  const closed = once(reader, "close");
  const port = await new Promise<number>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`${options.name} exited with ${code} before serving`)));
    reader.on("line", (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      lines.push(entry);
      if (entry.msg === `${options.name} serving`) resolve(entry.port as number);
    });
  });
  return {
    port,
    lines,
    async terminate() {
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      const [code] = (await exited) as [number | null];
      await closed;
      return code;
    },
    shutdownSteps: () =>
      lines
        .filter((entry) => entry.msg === "shutdown step done")
        .sort((a, b) => (a.position as number) - (b.position as number))
        .map((entry) => String(entry.step)),
  };
}
