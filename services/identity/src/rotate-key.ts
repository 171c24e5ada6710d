import { openDatabase, type Logger } from "@meshwork/platform";
import { migrations } from "../migrations/index.js";
import { createKnexIdentityStore } from "./adapters/identity-store.knex.js";
import { loadIdentityConfig } from "./config.js";
import { keyEncryptionFromConfig } from "./key-encryption.js";
import { openKeyRing, rotateSigningKey, type Rotation } from "./signing-keys.js";

/** Rotation asked for while IDENTITY_SIGNING_KEY pins the signing key. */
export class RotationRefusedError extends Error {
  override readonly name = "RotationRefusedError";
}

/**
 * `npm run identity:rotate-key`: with the service's own configuration (the
 * same IDENTITY_DATABASE_URL or embedded data directory, the same KEK), makes
 * a new signing key. The key ring is opened first exactly as the service
 * opens it, so a wrong KEK stops here, before a key sealed under it is
 * written for the running instances to choke on. The running instances
 * publish the new key at their next re-read (IDENTITY_SIGNING_KEYS_RELOAD_MS)
 * and sign with it from its activation time.
 */
export async function rotateIdentityKey(env: Readonly<Record<string, string | undefined>>, { log, now = () => new Date() }: { log: Logger; now?: () => Date }): Promise<Rotation> {
  const config = loadIdentityConfig(env);
  if (config.signingKey) {
    throw new RotationRefusedError("IDENTITY_SIGNING_KEY is set, so the service signs with that key whatever the database holds: rotate by giving it a new key instead");
  }
  // The same database and schema as startService opens for identity.
  const database = await openDatabase({
    url: config.databaseUrl,
    urlSetting: "IDENTITY_DATABASE_URL",
    dataDir: config.dataDir,
    schema: "identity",
    migrations,
    migrationsTable: "identity_migrations",
    log,
  });
  try {
    await database.migrate();
    const store = createKnexIdentityStore(database.knex);
    const { encryption } = await keyEncryptionFromConfig(config);
    await openKeyRing({ store, configured: undefined, encryption });
    return await rotateSigningKey({
      store,
      encryption,
      now: now(),
      publishLeadSeconds: config.keyPublishLeadSeconds,
      reloadMs: config.signingKeysReloadMs,
      tokenTtlSeconds: config.tokenTtlSeconds,
      retireMarginSeconds: config.keyRetireMarginSeconds,
    });
  } finally {
    await database.close();
  }
}
