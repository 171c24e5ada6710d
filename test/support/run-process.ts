/**
 * Child processes for tests: always bounded by a timeout, never through a
 * shell, output captured. A non-zero exit is a result, not an exception; a
 * timeout or a failure to start is an exception that names the command.
 */
import { spawn } from "node:child_process";
import { rm, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestScope } from "@meshwork/testing";

export interface RunResult {
  /** Exit code; null when the process was ended by a signal. */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

export interface RunOptions {
  readonly cwd: string;
  readonly timeoutMs: number;
  readonly env?: NodeJS.ProcessEnv;
}

export async function runProcess(command: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const started = Date.now();
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
    timeout: options.timeoutMs,
    killSignal: "SIGKILL",
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", (error) => reject(new Error(`${commandLine(command, args)} could not start: ${error.message}`, { cause: error })));
    child.once("close", (exitCode, signal) => {
      const ms = Date.now() - started;
      if (signal !== null && ms >= options.timeoutMs) {
        reject(new Error(`${commandLine(command, args)} timed out after ${options.timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
      } else {
        resolve(exitCode);
      }
    });
  });
  return { code, stdout, stderr, ms: Date.now() - started };
}

/** A fresh temporary directory, removed when the test ends. */
export async function tempDir(t: TestScope, prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), `meshwork-${prefix}-`));
  t.onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export const commandLine = (command: string, args: readonly string[]): string => [path.basename(command), ...args].join(" ");
