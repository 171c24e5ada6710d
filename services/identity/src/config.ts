import { createPrivateKey, type JsonWebKey as NodeJwk, type KeyObject } from "node:crypto";
import { ConfigError, loadConfig, serviceSettings, settings, type ConfigOf } from "@meshwork/platform";
import { KEK_BYTES, parseKek } from "./key-encryption.js";
import type { PrivateSigningJwk } from "./signing-keys.js";

const isPowerOfTwo = (value: number): boolean => value > 1 && (value & (value - 1)) === 0;

/**
 * Reads IDENTITY_SIGNING_KEY: a PKCS8 PEM or a private JWK as JSON, of a P-256
 * (ES256) key. node:crypto parses both synchronously, so a bad key stops
 * start-up here, with the variable named, rather than at the first sign-in.
 */
function parseSigningKey(text: string): PrivateSigningJwk | undefined {
  if (text.trim() === "") return undefined;
  const source = text.trim();
  let kid: string | undefined;
  let key: KeyObject;
  try {
    if (source.startsWith("{")) {
      const jwk = JSON.parse(source) as NodeJwk & { kid?: unknown };
      if (typeof jwk.kid === "string" && jwk.kid !== "") kid = jwk.kid;
      key = createPrivateKey({ key: jwk, format: "jwk" });
    } else {
      key = createPrivateKey({ key: source, format: "pem" });
    }
  } catch {
    return undefined;
  }
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") return undefined;
  const { crv, x, y, d } = key.export({ format: "jwk" });
  if (!crv || !x || !y || !d) return undefined;
  return { kty: "EC", crv, x, y, d, ...(kid === undefined ? {} : { kid }) };
}

const signingKeySchema = () =>
  settings
    .text()
    .refine((text) => text.trim() === "" || parseSigningKey(text) !== undefined, "expected a P-256 (ES256) private key as PKCS8 PEM or JWK JSON")
    .transform(parseSigningKey);

/** Every setting of the identity service, with its environment variable and default. */
export const identityConfigSpec = {
  ...serviceSettings("IDENTITY", { port: 50051, metricsPort: 9465, dataDir: ".data/pglite" }),
  scryptN: {
    env: "IDENTITY_SCRYPT_N",
    doc: "scrypt cost N for new password hashes (a power of two; 16384 is about 40 ms here; tests lower it for speed). Stored hashes keep their own parameters and are upgraded at the next sign-in.",
    schema: settings.positiveInt().refine(isPowerOfTwo, "expected a power of two above 1"),
    default: 16384,
  },
  scryptR: { env: "IDENTITY_SCRYPT_R", doc: "scrypt block size r for new password hashes.", schema: settings.positiveInt().max(64, "expected at most 64"), default: 8 },
  scryptP: { env: "IDENTITY_SCRYPT_P", doc: "scrypt parallelisation p for new password hashes.", schema: settings.positiveInt().max(16, "expected at most 16"), default: 1 },
  scryptKeyLength: {
    env: "IDENTITY_SCRYPT_KEYLEN",
    doc: "Length in bytes of the derived password hash.",
    schema: settings.positiveInt().min(32, "expected at least 32 bytes").max(128, "expected at most 128 bytes"),
    default: 64,
  },
  tokenTtlSeconds: {
    env: "IDENTITY_TOKEN_TTL_SECONDS",
    doc: "Lifetime of an access token in seconds (short: tokens cannot be revoked).",
    schema: settings.positiveInt().max(86_400, "expected at most 86400 (one day)"),
    default: 900,
  },
  tokenIssuer: { env: "IDENTITY_TOKEN_ISSUER", doc: "The `iss` claim of access tokens; verifiers expect the same.", schema: settings.nonEmpty(), default: "meshwork-identity" },
  tokenAudience: { env: "IDENTITY_TOKEN_AUDIENCE", doc: "The `aud` claim of access tokens; verifiers expect the same.", schema: settings.nonEmpty(), default: "meshwork" },
  signingKey: {
    env: "IDENTITY_SIGNING_KEY",
    doc: "ES256 private key (PKCS8 PEM or JWK JSON) to sign tokens with; when unset, one is generated at first start and kept in the database, encrypted under the key-encryption key.",
    schema: signingKeySchema(),
    default: "",
    secret: true,
  },
  signInAccountFreeFailures: {
    env: "IDENTITY_SIGNIN_ACCOUNT_FREE_FAILURES",
    doc: "Failed sign-ins allowed per email (known or not) before back-off starts; then each further failure doubles the wait. State is per instance, in memory.",
    schema: settings.positiveInt(),
    default: 5,
  },
  signInAddressFreeFailures: {
    env: "IDENTITY_SIGNIN_ADDRESS_FREE_FAILURES",
    doc: "Failed sign-ins allowed per client address (the gateway's x-meshwork-client-address, else the peer; IPv6 per /64) before back-off starts; higher than per email, as many people may share one address.",
    schema: settings.positiveInt(),
    default: 20,
  },
  signInBackoffBaseMs: {
    env: "IDENTITY_SIGNIN_BACKOFF_BASE_MS",
    doc: "Wait after the first failure over the allowance; doubles with each further failure. A waiting attempt is RESOURCE_EXHAUSTED with a retry-after trailer (seconds) and runs no scrypt.",
    schema: settings.positiveInt(),
    default: 1000,
  },
  signInBackoffMaxMs: { env: "IDENTITY_SIGNIN_BACKOFF_MAX_MS", doc: "Longest sign-in back-off.", schema: settings.positiveInt(), default: 900_000 },
  signInFailureWindowMs: {
    env: "IDENTITY_SIGNIN_FAILURE_WINDOW_MS",
    doc: "An email or address with no failed sign-in for this long starts from zero again; a successful sign-in resets the email at once.",
    schema: settings.positiveInt(),
    default: 900_000,
  },
  hashConcurrency: {
    env: "IDENTITY_HASH_CONCURRENCY",
    doc: "Password hashes (scrypt) run at once; keep it below libuv's thread pool (UV_THREADPOOL_SIZE, 4 by default) so file, DNS and other crypto work is never queued behind a flood of sign-ins.",
    schema: settings.positiveInt().max(64, "expected at most 64"),
    default: 2,
  },
  hashQueueLimit: {
    env: "IDENTITY_HASH_QUEUE_LIMIT",
    doc: "Sign-ins and sign-ups that may wait for a hashing slot; beyond it they are refused at once with RESOURCE_EXHAUSTED, without hashing.",
    schema: settings.nonNegativeInt().max(10_000, "expected at most 10000"),
    default: 64,
  },
  keyEncryptionKey: {
    env: "IDENTITY_KEY_ENCRYPTION_KEY",
    doc: `Key-encryption key (${KEK_BYTES} random bytes, base64url: \`openssl rand 32 | basenc --base64url\`) under which private signing keys are stored (AES-256-GCM); compose and Kubernetes give it as IDENTITY_KEY_ENCRYPTION_KEY_FILE. When unset, one is generated once into IDENTITY_GENERATED_KEK_PATH, never into the database.`,
    schema: settings
      .text()
      .refine((text) => text.trim() === "" || parseKek(text) !== undefined, `expected ${KEK_BYTES} bytes in base64url`)
      .transform((text) => (text.trim() === "" ? undefined : parseKek(text))),
    default: "",
    secret: true,
  },
  generatedKekPath: {
    env: "IDENTITY_GENERATED_KEK_PATH",
    doc: "File the key-encryption key is generated into (once, mode 0600) and read from when IDENTITY_KEY_ENCRYPTION_KEY is unset; unset: beside the embedded data directory (<IDENTITY_DATA_DIR>-identity.kek), or .data/identity.kek with a database URL (memory:// keeps it in memory).",
    schema: settings.text(),
    default: "",
  },
  signingKeysReloadMs: {
    env: "IDENTITY_SIGNING_KEYS_RELOAD_MS",
    doc: "How often a running instance re-reads the signing keys from its database, so a key made by `npm run identity:rotate-key` is published and then signs without a restart.",
    schema: settings.positiveInt().max(3_600_000, "expected at most 3600000 (one hour)"),
    default: 30_000,
  },
  keyPublishLeadSeconds: {
    env: "IDENTITY_KEY_PUBLISH_LEAD_SECONDS",
    doc: "How long a rotated-in key is published before it signs, so every instance has re-read it and every verifier has fetched it (keep above IDENTITY_SIGNING_KEYS_RELOAD_MS and the verifiers' *_JWKS_REFRESH_MS).",
    schema: settings.nonNegativeInt().max(86_400, "expected at most 86400 (one day)"),
    default: 120,
  },
  keyRetireMarginSeconds: {
    env: "IDENTITY_KEY_RETIRE_MARGIN_SECONDS",
    doc: "Extra time a replaced key stays published after its last token can have expired (clock skew between hosts, verifiers' tolerance).",
    schema: settings.nonNegativeInt().max(86_400, "expected at most 86400 (one day)"),
    default: 60,
  },
};

export type IdentityConfig = ConfigOf<typeof identityConfigSpec>;

/** scrypt needs 128·N·r bytes; above this a sign-in could exhaust the process. */
const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;

export function loadIdentityConfig(env: Readonly<Record<string, string | undefined>>): IdentityConfig {
  const config = loadConfig(identityConfigSpec, env);
  if (128 * config.scryptN * config.scryptR > MAX_SCRYPT_MEMORY) {
    throw new ConfigError([
      `IDENTITY_SCRYPT_N (scryptN) and IDENTITY_SCRYPT_R (scryptR): 128·N·r must stay within ${MAX_SCRYPT_MEMORY / 1024 / 1024} MiB; got N=${config.scryptN}, r=${config.scryptR}`,
    ]);
  }
  return config;
}
