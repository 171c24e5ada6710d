/**
 * `npm run projections:rebuild -- <name> [--check] [--batch-size N]`: rebuilds
 * one of the orders service's read models from the order streams while the
 * service keeps serving (`orders`: the view GetOrder and ListOrders read;
 * `sales`: the sales view). Resumable: an interrupted run goes on where it
 * stopped. Locked: a second rebuild of the same name fails at once. With
 * `--check` it compares and reports only, and exits 2 when the live view
 * differs from the one the streams give.
 */
import { parseArgs } from "node:util";
import { createLogger } from "@meshwork/platform";
import { PROJECTIONS, rebuildProjection } from "@meshwork/orders";

const USAGE = `usage: npm run projections:rebuild -- <${Object.keys(PROJECTIONS).join("|")}> [--check] [--batch-size N]`;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({ options: { check: { type: "boolean" }, "batch-size": { type: "string" } }, allowPositionals: true });
  if (positionals.length !== 1) throw new Error(`expected exactly one projection name, got ${positionals.length === 0 ? "none" : positionals.join(" ")}\n${USAGE}`);
  const batchText = values["batch-size"];
  const batchSize = batchText === undefined ? undefined : Number(batchText);
  if (batchSize !== undefined && (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000)) throw new Error(`--batch-size ${batchText}: expected a whole number from 1 to 10000`);
  const log = createLogger({ service: "projections-rebuild", level: process.env.ORDERS_LOG_LEVEL ?? "warn", destination: process.stderr });
  const report = await rebuildProjection(process.env, positionals[0]!, log, {
    log: (line) => process.stderr.write(`${line}\n`),
    ...(values.check ? { check: true } : {}),
    ...(batchSize === undefined ? {} : { batchSize }),
  });
  process.stdout.write(
    `${report.name}: ${report.handled} handled${report.resumed ? " (resumed an interrupted rebuild)" : ""}, ${report.differences} differed from the live view, ` +
      `${report.swapped ? "rebuilt view in place" : "nothing written"}\n`,
  );
  return values.check && report.differences > 0 ? 2 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`projections:rebuild failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
