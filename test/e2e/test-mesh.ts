/**
 * The multi-process mesh for a test: its own databases, exchange and queue
 * (named after a random id, dropped and deleted afterwards), every log line
 * kept and awaitable. Used by the mesh, observability and chaos tests.
 */
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import type { TestScope } from "@meshwork/testing";
import { adminUrl, amqpUrl, connectRabbit, createTestDatabase, deleteTestTopology } from "@meshwork/testing";
import { startMesh, type MeshOptions, type RunningMesh } from "../../scripts/lib/mesh.js";

export interface TestMesh extends RunningMesh {
  /** The topic exchange orders publishes to, and the notifications queue. */
  readonly exchange: string;
  readonly queue: string;
  readonly id: string;
  readonly suffix: string;
  /** Every line so far, prefixed with its instance name. */
  readonly lines: readonly string[];
  /** Resolves with the first line (already seen or coming) that matches; rejects after `timeoutMs`. */
  waitForLine(match: (line: string) => boolean, timeoutMs: number, what: string): Promise<string>;
  /** The last lines, for a failure report. */
  tail(count?: number): string;
}

/** A mesh for one test, or undefined when the infrastructure is missing (a failure in CI). */
export async function startTestMesh(t: TestScope, options: Omit<MeshOptions, "adminUrl" | "amqpUrl" | "output" | "exchange" | "queue" | "databaseSuffix">): Promise<TestMesh | undefined> {
  if ((await createTestDatabase(t, "mesh_probe")) === undefined) return undefined;
  if (!(await connectRabbit(t))) return undefined;
  const id = randomBytes(3).toString("hex");
  const exchange = `test.mesh.${id}`;
  const queue = `test.mesh.notifications.${id}`;
  const lines: string[] = [];
  const waiters = new Set<{ match: (line: string) => boolean; resolve: (line: string) => void }>();
  const suffix = `_c${id}`;
  // Short retry delays unless the test says otherwise; the delay queues are named after them, and deleted after the test.
  const retryDelays = options.env?.NOTIFICATIONS_RETRY_DELAYS_MS ?? "200";
  const mesh = await startMesh({
    ...options,
    env: { ...options.env, NOTIFICATIONS_RETRY_DELAYS_MS: retryDelays },
    adminUrl: adminUrl(),
    amqpUrl: amqpUrl(),
    databaseSuffix: suffix,
    exchange,
    queue,
    output: (line) => {
      lines.push(line);
      for (const waiter of [...waiters]) {
        if (waiter.match(line)) {
          waiters.delete(waiter);
          waiter.resolve(line);
        }
      }
    },
  }).catch((error: unknown) => {
    process.stderr.write(`mesh output (last 40 lines):\n${lines.slice(-40).join("\n")}\n`);
    throw error;
  });
  t.onTestFinished(async () => {
    // CHAOS_LOG=<file> keeps every line of the mesh for a closer look.
    if (process.env.CHAOS_LOG) await writeFile(process.env.CHAOS_LOG, `${lines.join("\n")}\n`);
    await mesh.stop();
    await mesh.dropDatabases();
    await deleteTestTopology([{ exchange, bindings: [], queue, retryDelaysMs: retryDelays.split(",").map(Number) }], [exchange]);
  });
  return {
    ...mesh,
    exchange,
    queue,
    id,
    suffix,
    lines,
    waitForLine(match, timeoutMs, what) {
      const seen = lines.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise<string>((resolve, reject) => {
        const waiter = {
          match,
          resolve: (line: string) => {
            clearTimeout(timer);
            resolve(line);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no log line for ${what} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    tail: (count = 40) => lines.slice(-count).join("\n"),
  };
}

/** Ports of one mesh: a block of ten below Linux's ephemeral range (32768+, where port-0 servers of parallel tests land), picked at random. */
export const meshBasePort = (): number => 21_000 + Math.floor(Math.random() * 1170) * 10; // the last block ends at 32699
