/**
 * `npm run identity:rotate-key`: makes a new identity signing key, against
 * the database identity itself uses (IDENTITY_DATABASE_URL, or the embedded
 * IDENTITY_DATA_DIR: stop `npm start` first, embedded PostgreSQL is one
 * process's) and with its KEK (IDENTITY_KEY_ENCRYPTION_KEY[_FILE], or the
 * generated file). The new key is published at once and signs after
 * IDENTITY_KEY_PUBLISH_LEAD_SECONDS; the old one is published until its last
 * token has expired, then retired.
 */
import { createLogger } from "@meshwork/platform";
import { rotateIdentityKey } from "@meshwork/identity";

async function main(): Promise<void> {
  const log = createLogger({ service: "identity-rotate-key", level: process.env.IDENTITY_LOG_LEVEL ?? "warn", destination: process.stderr });
  const rotation = await rotateIdentityKey(process.env, { log });
  const lines = [`new signing key ${rotation.kid}: published now, signs from ${rotation.activateAt.toISOString()}`];
  if (rotation.replaced) lines.push(`replaced key ${rotation.replaced.kid}: published until ${rotation.replaced.retireAt.toISOString()}, then retired`);
  process.stdout.write(`${lines.join("\n")}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`identity:rotate-key failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
