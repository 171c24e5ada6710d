/**
 * `npm run api:release -- <version> [--sunset <package>=<YYYY-MM-DD>]... [--remove-sunset <package>]`
 *
 * Releases the contracts in proto/: checks the version (MAJOR.MINOR.PATCH,
 * above the last release and the last `api-v*` tag), runs buf lint and buf
 * breaking against the released image and the last release tag's image,
 * writes api/released.binpb, records the release in api/releases.json and
 * prints the tag to create. `--sunset` deprecates a package with a sunset
 * date; `--remove-sunset` is the one override of the gate (see
 * scripts/lib/api-gate.ts and api/README.md).
 */
import path from "node:path";
import { parseArgs } from "node:util";
import { ApiGateError, archivedImage, LIFECYCLE_MODULE, RELEASE_LOG, RELEASED_IMAGE, releaseApi } from "./lib/api-gate.js";

const USAGE = "usage: npm run api:release -- <version> [--sunset <package>=<YYYY-MM-DD>]... [--remove-sunset <package>]";

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    allowPositionals: true,
    options: { sunset: { type: "string", multiple: true }, "remove-sunset": { type: "string" } },
  });
  if (positionals.length !== 1) throw new ApiGateError(`expected exactly one version, got ${positionals.length === 0 ? "none" : positionals.join(" ")}\n${USAGE}`);
  const sunsets: Record<string, string> = {};
  for (const entry of values.sunset ?? []) {
    const [pkg, date, ...rest] = entry.split("=");
    if (!pkg || !date || rest.length > 0) throw new ApiGateError(`--sunset ${entry}: expected <package>=<YYYY-MM-DD>, e.g. shop.catalog.v1=2027-07-01`);
    sunsets[pkg] = date;
  }
  const root = path.resolve(import.meta.dirname, "..");
  const removeSunset = values["remove-sunset"];
  const outcome = await releaseApi({ root, version: positionals[0]!, sunsets, ...(removeSunset === undefined ? {} : { removeSunset }) });
  const lines = [
    `released API ${outcome.record.version}: compared with ${outcome.comparedWith.join(" and ")}`,
    `wrote ${RELEASED_IMAGE} and ${archivedImage(outcome.record.version)} (sha256 ${outcome.record.sha256}), recorded it in ${RELEASE_LOG} and its dates in ${LIFECYCLE_MODULE}`,
    ...outcome.record.removed.map((pkg) => `removed ${pkg} (its sunset had passed)`),
    ...Object.entries(outcome.record.packages)
      .filter(([, record]) => record.sunset !== undefined)
      .map(([pkg, record]) => `${pkg}: deprecated ${record.deprecated}, sunset ${record.sunset}`),
    `next: commit api/ and ${LIFECYCLE_MODULE} with the proto changes, then tag that commit (the tag is a second witness; the images in api/releases/ are what CI reads):`,
    `  ${outcome.tagCommand}`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`api:release refused: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
