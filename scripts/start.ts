/**
 * `npm start`: the whole system in one Node process on embedded defaults
 * (scripts/lib/all-in-one.ts). Environment variables still override any
 * setting (see each service's README).
 *
 * Where things go: the embedded PostgreSQL and the generated keys in
 * .data/ (each service's *_DATA_DIR moves them); the web app is built into
 * web/dist, or into MESHWORK_WEB_BUILD_DIR when set (the start bench uses
 * both for a first start in a temp dir); GATEWAY_WEB_DIR serves a built app
 * as it is, without building.
 */
import path from "node:path";
import { performance } from "node:perf_hooks";
import { SERVICE_DESCRIPTIONS, startAllInOne, type ServiceName } from "./lib/all-in-one.js";
import { ensureWebBuild } from "./lib/web-build.js";

// Quiet services by default so the banner stays readable; any *_LOG_LEVEL wins.
const quiet = Object.fromEntries(["IDENTITY", "CATALOG", "PAYMENTS", "ORDERS", "NOTIFICATIONS", "GATEWAY"].map((prefix) => [`${prefix}_LOG_LEVEL`, "warn"]));

async function main(): Promise<void> {
  // The gateway serves the shop's web app from web/dist unless told otherwise.
  // The build (a child process, on a first start or after web changes) runs
  // while the services start: the gateway reads web files per request only.
  const buildDir = process.env.MESHWORK_WEB_BUILD_DIR || undefined;
  const building = process.env.GATEWAY_WEB_DIR === undefined ? ensureWebBuild(buildDir) : undefined;
  building?.catch(() => {}); // awaited below; not unhandled meanwhile
  let shop: Awaited<ReturnType<typeof startAllInOne>>;
  try {
    shop = await startAllInOne({ ...quiet, ...process.env, ...(buildDir && building ? { GATEWAY_WEB_DIR: path.resolve(buildDir) } : {}) });
  } catch (error) {
    await building?.catch(() => {}); // no build left running (and holding its lock) behind the error
    throw error;
  }
  try {
    const web = await building;
    if (web?.reason) process.stdout.write(`Built the web app (${web.reason}) in ${web.ms} ms.\n`);
  } catch (error) {
    await shop.stop("the web build failed");
    throw error;
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    shop.stop(signal).then(
      (ok) => {
        process.stdout.write(ok ? "Meshwork stopped: every service drained and closed.\n" : "Meshwork stopped, with errors (see above).\n");
        process.exit(ok ? 0 : 1);
      },
      () => process.exit(1),
    );
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));

  // From the process's own start: loading the code counts too.
  const readyMs = Math.round(performance.now());
  const rssMb = Math.round(process.memoryUsage().rss / 1024 / 1024);
  const gateway = `http://127.0.0.1:${shop.ports.gateway}`;
  const curl = "npx buf curl --protocol connect --http2-prior-knowledge";
  const lines = [
    "",
    `Meshwork is running (embedded mode: PostgreSQL in ${process.env.CATALOG_DATA_DIR ?? ".data/pglite"}, in-process broker), ready in ${readyMs} ms, ${rssMb} MB resident.`,
    "",
    `  web shop       ${gateway}/   open it in a browser: sign up, shop, follow your order live, watch the mesh`,
    `  gateway        ${gateway}   ${SERVICE_DESCRIPTIONS.gateway}`,
    ...(Object.keys(SERVICE_DESCRIPTIONS) as ServiceName[])
      .filter((name) => name !== "gateway")
      .map((name) => `  ${name.padEnd(14)} grpc://127.0.0.1:${shop.ports[name]}   ${SERVICE_DESCRIPTIONS[name]}`),
    "",
    `Prometheus metrics: ${(Object.keys(SERVICE_DESCRIPTIONS) as ServiceName[]).map((name) => `${name} :${shop.metricsPorts[name]}`).join(", ")} (GET /metrics)`,
    "",
    "Try it through the gateway (reflection is on, no .proto files needed):",
    `  ${curl} --list-methods ${gateway}`,
    `  ${curl} -d '{"pageSize":3}' ${gateway}/shop.catalog.v1.CatalogService/ListProducts`,
    `  npm run load -- --duration=30     # shoppers signing up, ordering, following their orders`,
    "",
    "Ctrl-C stops it gracefully.",
    "",
  ];
  process.stdout.write(lines.join("\n"));
}

main().catch((error: unknown) => {
  process.stderr.write(`Meshwork failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
