import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { Logger } from "../logger.js";

export interface MetricsServer {
  readonly port: number;
  close(): Promise<void>;
}

export const METRICS_PATH = "/metrics";

/**
 * Prometheus text at GET /metrics on a port of its own (kept off the gRPC and
 * edge ports, so scraping needs no gRPC and no token). prom-client renders;
 * node:http serves — nothing more is needed for one read-only path.
 */
export async function startMetricsServer(options: { registry: Registry; host: string; port: number; log: Logger }): Promise<MetricsServer> {
  const { registry, log } = options;
  const server = http.createServer((request, response) => {
    const path = (request.url ?? "").split("?")[0];
    if (path !== METRICS_PATH) {
      response.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
      response.end(`not found: metrics are at ${METRICS_PATH}\n`);
      return;
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" });
      response.end(`${request.method} not allowed: GET ${METRICS_PATH}\n`);
      return;
    }
    registry.metrics().then(
      (text) => {
        response.writeHead(200, { "content-type": registry.contentType, "cache-control": "no-store" });
        response.end(request.method === "HEAD" ? undefined : text);
      },
      (error: unknown) => {
        log.warn({ err: error instanceof Error ? error.message : String(error) }, "collecting metrics failed");
        response.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
        response.end("collecting metrics failed\n");
      },
    );
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  }).catch((error: unknown) => {
    const code = (error as { code?: string }).code;
    throw new Error(`metrics port ${options.host}:${options.port}: ${code === "EADDRINUSE" ? "already in use (set the service's _METRICS_PORT, 0 for any free one)" : String(error)}`, {
      cause: error,
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
