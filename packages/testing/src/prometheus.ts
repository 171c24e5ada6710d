/**
 * A real Prometheus server for tests (Debian's `prometheus` package, which
 * .ci/run installs): started on a free loopback port with a generated config
 * and a throw-away storage directory, stopped when the test ends. Skipped
 * (failing in CI) when the binary is missing.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestScope } from "./scope.js";
import { needs } from "./infra.js";

export const PROMETHEUS_BINARY = process.env.MESHWORK_TEST_PROMETHEUS ?? "/usr/bin/prometheus";

export interface ScrapeJob {
  readonly job: string;
  /** "127.0.0.1:port" of a /metrics endpoint. */
  readonly target: string;
}

export interface QueryResult {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

export interface RunningPrometheus {
  readonly url: string;
  /** An instant query through the HTTP API (/api/v1/query). */
  query(promql: string): Promise<QueryResult[]>;
  /** Asks `promql` until it returns a series (`accept` decides), or fails after `timeoutMs` saying what it last saw. */
  until(promql: string, accept: (results: QueryResult[]) => boolean, timeoutMs: number): Promise<QueryResult[]>;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export async function startPrometheus(t: TestScope, jobs: readonly ScrapeJob[], scrapeIntervalSeconds = 1): Promise<RunningPrometheus | undefined> {
  if (!needs(t, "Prometheus", existsSync(PROMETHEUS_BINARY) ? undefined : `${PROMETHEUS_BINARY} is missing (apt-get install prometheus)`)) return undefined;
  const dir = await mkdtemp(path.join(tmpdir(), "meshwork-prometheus-"));
  t.onTestFinished(() => rm(dir, { recursive: true, force: true }));
  const config = [
    "global:",
    `  scrape_interval: ${scrapeIntervalSeconds}s`,
    `  scrape_timeout: ${scrapeIntervalSeconds}s`,
    "scrape_configs:",
    ...jobs.flatMap((job) => [`  - job_name: ${JSON.stringify(job.job)}`, "    static_configs:", `      - targets: [${JSON.stringify(job.target)}]`]),
    "",
  ].join("\n");
  const configFile = path.join(dir, "prometheus.yml");
  await writeFile(configFile, config);
  const port = await freePort();
  const child = spawn(PROMETHEUS_BINARY, [`--config.file=${configFile}`, `--storage.tsdb.path=${path.join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--log.level=warn"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  t.onTestFinished(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    await exited;
  });
  const url = `http://127.0.0.1:${port}`;

  // Ready when /-/ready answers 200; an early exit fails at once with its output.
  let exitedWith: string | undefined;
  child.once("exit", (code, signal) => {
    exitedWith = String(signal ?? code);
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exitedWith !== undefined) throw new Error(`prometheus exited (${exitedWith}) before it was ready: ${stderr}`);
    const ready = await fetch(`${url}/-/ready`).then(
      (response) => response.ok,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) throw new Error(`prometheus was not ready within 30 s: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  const query = async (promql: string): Promise<QueryResult[]> => {
    const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await response.json()) as { status: string; error?: string; data?: { resultType: string; result: QueryResult[] } };
    if (body.status !== "success") throw new Error(`query ${promql} failed: ${body.error ?? response.status}`);
    return body.data?.result ?? [];
  };
  return {
    url,
    query,
    async until(promql, accept, timeoutMs) {
      const end = Date.now() + timeoutMs;
      let last: QueryResult[] = [];
      // Prometheus has no push for query results: ask again after each scrape interval.
      while (Date.now() < end) {
        last = await query(promql);
        if (accept(last)) return last;
        await new Promise((resolve) => setTimeout(resolve, (scrapeIntervalSeconds * 1000) / 2));
      }
      throw new Error(`${promql} did not return the expected series within ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    },
  };
}
