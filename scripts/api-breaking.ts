/**
 * `npm run breaking`: buf breaking of proto/ against the released image
 * (api/released.binpb, which must be the one api/releases.json recorded) and
 * against the image at the last `api-v*` release tag, when there is one.
 */
import path from "node:path";
import { checkBreaking, formatFinding } from "./lib/api-gate.js";

async function main(): Promise<void> {
  const { results } = await checkBreaking({ root: path.resolve(import.meta.dirname, "..") });
  const lines = results.flatMap((result) => result.findings.map((finding) => formatFinding(result.baseline.label, finding)));
  const compared = results.map((result) => result.baseline.label).join(" and ");
  if (lines.length > 0) {
    process.stderr.write(`the contracts break the released API (compared with ${compared}):\n${lines.join("\n")}\nPut the change in a new version package (see api/README.md).\n`);
    process.exit(100);
  }
  process.stdout.write(`no breaking change against ${compared}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`breaking: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
