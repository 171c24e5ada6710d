import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { runMain, startService, type RunningService, type StartOptions } from "@meshwork/platform";
import { migrations } from "../migrations/index.js";
import { createKnexIdentityStore } from "./adapters/identity-store.knex.js";
import { loadIdentityConfig } from "./config.js";
import { createHashLimiter, limitPasswordHasher } from "./hash-limiter.js";
import { createPasswordHasher } from "./password-hash.js";
import { createIdentityHandlers } from "./service.js";
import { keyEncryptionFromConfig } from "./key-encryption.js";
import { createSignInThrottle } from "./sign-in-throttle.js";
import { openKeyRing } from "./signing-keys.js";
import { createTokenIssuer } from "./tokens.js";

/** Below this N a leaked hash is cheap to attack; allowed (tests use it) but said out loud. */
const RECOMMENDED_MIN_SCRYPT_N = 16384;

/**
 * Identity's composition root: configuration, then adapters, then the
 * server, then shutdown. `env` is the environment to read (process.env when
 * run on its own; the all-in-one launcher passes its own); `options` may hand
 * in a logger or telemetry instead of building them from the config.
 */
export async function startIdentity(env: Readonly<Record<string, string | undefined>>, options: StartOptions = {}): Promise<RunningService> {
  const config = loadIdentityConfig(env);
  return startService({
    name: "identity",
    config,
    migrations,
    log: options.log,
    telemetry: options.telemetry,
    async setup({ database, host, log, shutdown }) {
      const store = createKnexIdentityStore(database.knex);
      const kek = await keyEncryptionFromConfig(config);
      const keys = await openKeyRing({ store, configured: config.signingKey, encryption: kek.encryption });
      log.info({ kid: keys.signingKey().kid, source: keys.source, published: keys.published().length, kekId: kek.encryption.kekId, kekSource: kek.source }, "signing key ready");
      // Every instance re-reads the keys on this timer: a rotation (another
      // process writing a new key) is published within one interval and signs
      // from its activation time, with no restart.
      const reload = setInterval(() => {
        keys.reload().catch((error: unknown) => log.warn({ err: error }, "re-reading the signing keys failed; the keys already loaded stay in use"));
      }, config.signingKeysReloadMs);
      reload.unref();
      shutdown.add("stop re-reading signing keys", async () => clearInterval(reload));
      const scrypt = { N: config.scryptN, r: config.scryptR, p: config.scryptP, keyLength: config.scryptKeyLength };
      if (scrypt.N < RECOMMENDED_MIN_SCRYPT_N) log.warn({ scryptN: scrypt.N }, `IDENTITY_SCRYPT_N is below ${RECOMMENDED_MIN_SCRYPT_N}: fine for tests, weak in production`);
      const passwords = limitPasswordHasher(await createPasswordHasher(scrypt), createHashLimiter({ concurrency: config.hashConcurrency, queueLimit: config.hashQueueLimit }));
      const backoff = { baseDelayMs: config.signInBackoffBaseMs, maxDelayMs: config.signInBackoffMaxMs, windowMs: config.signInFailureWindowMs };
      const throttle = createSignInThrottle({
        account: { ...backoff, freeFailures: config.signInAccountFreeFailures },
        address: { ...backoff, freeFailures: config.signInAddressFreeFailures },
      });
      const tokens = createTokenIssuer({ key: keys.signingKey, issuer: config.tokenIssuer, audience: config.tokenAudience, ttlSeconds: config.tokenTtlSeconds });
      host.add(IdentityService, createIdentityHandlers({ store, passwords, tokens, jwks: keys.published, throttle }));
    },
  });
}

if (import.meta.filename === process.argv[1]) runMain("identity", () => startIdentity(process.env));
