/**
 * `npm run compose:up`: builds what is missing (the stand-ins first where no
 * image registry answers, then every service image), starts compose.yaml
 * detached, waits until every container is healthy, and prints the gateway's
 * address, the time taken, each image's size and each container's
 * start-to-healthy time.
 * `npm run compose:down`: stops and removes the containers, networks and
 * volumes (the databases too).
 */
import { buildAll, composeSetup, downCompletely, readyReport, upAndWaitHealthy } from "./lib/compose.js";

const HEALTHY_WITHIN_MS = 240_000;

async function up(): Promise<void> {
  const started = Date.now();
  const setup = await composeSetup();
  if (setup.offline) process.stdout.write("No image registry answers: using the stand-ins (scripts/standins.ts) and compose.offline.yaml.\n");
  await buildAll(setup);
  const built = Date.now();
  const ready = await upAndWaitHealthy(setup, HEALTHY_WITHIN_MS);
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const lines = [
    "",
    ...(await readyReport(ready)),
    "",
    "Meshwork is up in containers: the shop and its API at http://127.0.0.1:8080",
    `  built in ${seconds(built - started)}, healthy ${seconds(Date.now() - built)} later (${seconds(Date.now() - started)} in all)`,
    "  npm run compose:down   stops it and removes everything it made, the databases too",
    "",
  ];
  process.stdout.write(lines.join("\n"));
}

async function main(): Promise<void> {
  const command = process.argv[2];
  if (command === "up") return up();
  if (command === "down") {
    await downCompletely(await composeSetup());
    process.stdout.write("Meshwork's containers, networks and volumes are removed (its images stay, for the next compose:up).\n");
    return;
  }
  throw new Error(`usage: compose.ts up|down (got ${command ?? "nothing"})`);
}

main().catch((error: unknown) => {
  process.stderr.write(`compose: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
