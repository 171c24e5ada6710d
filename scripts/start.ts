/**
 * `npm start`: the whole system in one Node process on embedded defaults.
 * Every service keeps its own port and talks gRPC over loopback, with an
 * embedded PostgreSQL (PGlite) data directory of its own under .data/.
 * Environment variables still override any setting (see each service's config.ts).
 */
import { performance } from "node:perf_hooks";
import { startCatalog } from "@meshwork/catalog";

const started = performance.now();
// Quiet services by default so the banner stays readable; any *_LOG_LEVEL wins.
const env = { CATALOG_LOG_LEVEL: "warn", ...process.env };

const services = [{ name: "catalog", services: ["shop.catalog.v1.CatalogService", "shop.catalog.v1.StockService (internal)"], start: () => startCatalog(env) }];

async function main(): Promise<void> {
  const running = await Promise.all(services.map(async (service) => ({ ...service, ...(await service.start()) })));
  const readyMs = Math.round(performance.now() - started);
  const rssMb = Math.round(process.memoryUsage().rss / 1024 / 1024);
  const catalog = running.find((service) => service.name === "catalog")!;
  const lines = [
    "",
    `Meshwork is running (embedded mode: PGlite data in .data/), ready in ${readyMs} ms, ${rssMb} MB resident.`,
    "",
    ...running.map((service) => `  ${service.name.padEnd(14)} grpc://127.0.0.1:${service.port}   ${service.services.join(", ")}`),
    "",
    "Try it (reflection is on, no .proto files needed):",
    `  npx buf curl --protocol grpc --http2-prior-knowledge --list-methods http://127.0.0.1:${catalog.port}`,
    `  npx buf curl --protocol grpc --http2-prior-knowledge -d '{"pageSize":3}' http://127.0.0.1:${catalog.port}/shop.catalog.v1.CatalogService/ListProducts`,
    "",
    "Ctrl-C stops it gracefully.",
    "",
  ];
  process.stdout.write(lines.join("\n"));

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    Promise.all(running.map((service) => service.shutdown.run(signal))).then(
      (results) => process.exit(results.every(Boolean) ? 0 : 1),
      () => process.exit(1),
    );
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
}

main().catch((error: unknown) => {
  process.stderr.write(`Meshwork failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
