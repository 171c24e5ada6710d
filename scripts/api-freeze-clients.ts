/**
 * `npm run api:freeze-clients`: writes the frozen v1 clients
 * (test/fixtures/frozen-v1/) from the image of the first release that shipped
 * the v1 packages, once; run again (after a generator upgrade), it
 * regenerates that same release's clients, never a later release's. Never
 * run it to make a failing test pass: see test/fixtures/frozen-v1/README.md.
 */
import path from "node:path";
import { FROZEN_DIR, freezeClients } from "./lib/frozen-clients.js";

async function main(): Promise<void> {
  const manifest = await freezeClients(path.resolve(import.meta.dirname, ".."));
  process.stdout.write(`froze the clients of release ${manifest.release} (image sha256 ${manifest.imageSha256}) in ${FROZEN_DIR}; they stay that release's whatever is released later\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`api:freeze-clients refused: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
