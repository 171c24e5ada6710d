import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey } from "jose";
import type { KeyEncryption, SealedPrivateKey } from "./key-encryption.js";
import type { IdentityStore } from "./ports.js";

export const SIGNING_ALGORITHM = "ES256";

/** A P-256 private key as a JWK (d is the secret). kid only when the operator supplied one. */
export interface PrivateSigningJwk {
  readonly kty: "EC";
  readonly crv: string;
  readonly x: string;
  readonly y: string;
  readonly d: string;
  readonly kid?: string;
}

/** What GetJwks publishes for one key. */
export interface PublicSigningJwk {
  readonly kid: string;
  readonly kty: "EC";
  readonly crv: string;
  readonly x: string;
  readonly y: string;
  readonly alg: typeof SIGNING_ALGORITHM;
  readonly use: "sig";
}

/** A private key as the store holds it: sealed under the KEK, or (rows written before encryption at rest) in clear until start-up seals it. */
export type StoredKeyMaterial = { readonly sealed: SealedPrivateKey } | { readonly clear: PrivateSigningJwk };

/** A key pair as kept in the database, with its schedule. */
export interface StoredSigningKey {
  readonly kid: string;
  readonly material: StoredKeyMaterial;
  readonly createdAt: Date;
  /** From this moment it signs new tokens; it is published from the moment it is stored. */
  readonly activateAt: Date;
  /** From this moment it is no longer published (its last token has expired); null while in service. */
  readonly retireAt: Date | null;
}

/** A key ready to sign with. */
export interface SigningKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: PublicSigningJwk;
}

export const publicJwkOf = (kid: string, jwk: Pick<PrivateSigningJwk, "crv" | "x" | "y">): PublicSigningJwk => ({
  kid,
  kty: "EC",
  crv: jwk.crv,
  x: jwk.x,
  y: jwk.y,
  alg: SIGNING_ALGORITHM,
  use: "sig",
});

/**
 * The key id is the RFC 7638 thumbprint of the public key: the same key
 * always gets the same id, wherever and however often it is computed.
 */
export const thumbprintKid = (jwk: Pick<PrivateSigningJwk, "crv" | "x" | "y">): Promise<string> => calculateJwkThumbprint({ kty: "EC", crv: jwk.crv, x: jwk.x, y: jwk.y }, "sha256");

/** A fresh ES256 key pair with its kid. */
export async function generateSigningKey(): Promise<{ kid: string; privateJwk: PrivateSigningJwk }> {
  const { privateKey } = await generateKeyPair(SIGNING_ALGORITHM, { extractable: true });
  const { crv, x, y, d } = await exportJWK(privateKey);
  if (!crv || !x || !y || !d) throw new Error("generated key lacks EC members");
  const privateJwk: PrivateSigningJwk = { kty: "EC", crv, x, y, d };
  return { kid: await thumbprintKid(privateJwk), privateJwk };
}

export async function importSigningKey(kid: string, jwk: PrivateSigningJwk): Promise<SigningKey> {
  const privateKey = (await importJWK({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, d: jwk.d }, SIGNING_ALGORITHM)) as CryptoKey;
  return { kid, privateKey, publicJwk: publicJwkOf(kid, jwk) };
}

/** The keys of one instance: what it signs with now, and what it publishes now. */
export interface KeyRing {
  /** The key new tokens are signed with at this moment. */
  signingKey(): SigningKey;
  /** Every public key a valid token may name at this moment, the signing key first. */
  published(): readonly PublicSigningJwk[];
  /** Re-reads the stored keys (a rotation by another process); keeps the old set if that fails. */
  reload(): Promise<void>;
  /** Where the signing key came from at start, for the start-up log. */
  readonly source: "config" | "database" | "generated";
}

export interface KeyRingOptions {
  readonly store: IdentityStore;
  /** IDENTITY_SIGNING_KEY: signs instead of the stored keys, which stay published. */
  readonly configured: PrivateSigningJwk | undefined;
  readonly encryption: KeyEncryption;
  readonly clock?: () => Date;
}

const isRetired = (key: StoredSigningKey, now: Date): boolean => key.retireAt !== null && key.retireAt.getTime() <= now.getTime();

const openMaterial = (encryption: KeyEncryption, key: Pick<StoredSigningKey, "kid" | "material">): PrivateSigningJwk =>
  "sealed" in key.material ? encryption.open(key.kid, key.material.sealed) : key.material.clear;

/**
 * The stored key that signs at `now`: of the keys in service whose activation
 * time has come, the one activated last. If none has come yet (a clock behind
 * the rotating host's), the one activating first, so there is always one.
 */
export function signingKidAt(keys: readonly StoredSigningKey[], now: Date): string | undefined {
  const live = keys.filter((key) => !isRetired(key, now));
  const due = live.filter((key) => key.activateAt.getTime() <= now.getTime());
  const byActivation = (a: StoredSigningKey, b: StoredSigningKey) => a.activateAt.getTime() - b.activateAt.getTime() || a.createdAt.getTime() - b.createdAt.getTime();
  if (due.length > 0) return [...due].sort(byActivation).at(-1)?.kid;
  return [...live].sort(byActivation)[0]?.kid;
}

/**
 * Opens this instance's keys. First every private key still stored in clear
 * (written before encryption at rest) is sealed under the KEK, so upgrading
 * loses no key and leaves none readable. Then, unless a key is configured,
 * the active key is claimed: two instances starting together on an empty
 * database each generate a candidate, the store keeps only the first (one
 * active key, a unique index) and both sign with it. Every key in service is
 * decrypted here, so a wrong KEK stops start-up with the setting named
 * rather than failing at the first sign-in.
 */
export async function openKeyRing({ store, configured, encryption, clock = () => new Date() }: KeyRingOptions): Promise<KeyRing> {
  for (const key of await store.listSigningKeys()) {
    if ("clear" in key.material) await store.sealSigningKey(key.kid, encryption.seal(key.kid, key.material.clear));
  }
  let source: KeyRing["source"];
  let configuredKey: SigningKey | undefined;
  if (configured) {
    configuredKey = await importSigningKey(configured.kid ?? (await thumbprintKid(configured)), configured);
    source = "config";
  } else {
    const candidate = await generateSigningKey();
    const active = await store.claimActiveSigningKey({ kid: candidate.kid, sealed: encryption.seal(candidate.kid, candidate.privateJwk) });
    source = active.kid === candidate.kid ? "generated" : "database";
  }

  const imported = new Map<string, SigningKey>();
  let stored: readonly StoredSigningKey[] = [];
  const load = async (): Promise<void> => {
    const keys = await store.listSigningKeys();
    const now = clock();
    for (const key of keys) {
      // Retired keys are never decrypted again: nothing signs or publishes with them.
      if (!imported.has(key.kid) && !isRetired(key, now)) imported.set(key.kid, await importSigningKey(key.kid, openMaterial(encryption, key)));
    }
    stored = keys;
  };
  await load();

  const signingKey = (): SigningKey => {
    if (configuredKey) return configuredKey;
    const kid = signingKidAt(stored, clock());
    const key = kid === undefined ? undefined : imported.get(kid);
    if (!key) throw new Error("no signing key in service: every stored key is retired");
    return key;
  };

  return {
    source,
    signingKey,
    published() {
      const now = clock();
      const signing = signingKey();
      const others = stored.filter((key) => key.kid !== signing.kid && !isRetired(key, now)).flatMap((key) => imported.get(key.kid)?.publicJwk ?? []);
      return [signing.publicJwk, ...others];
    },
    reload: load,
  };
}

export interface RotationOptions {
  readonly store: IdentityStore;
  readonly encryption: KeyEncryption;
  readonly now: Date;
  /** IDENTITY_KEY_PUBLISH_LEAD_SECONDS: published this long before it signs. */
  readonly publishLeadSeconds: number;
  /** IDENTITY_SIGNING_KEYS_RELOAD_MS: an instance may sign with the old key this much after the switch. */
  readonly reloadMs: number;
  /** IDENTITY_TOKEN_TTL_SECONDS: the old key's last token lives this long. */
  readonly tokenTtlSeconds: number;
  /** IDENTITY_KEY_RETIRE_MARGIN_SECONDS. */
  readonly retireMarginSeconds: number;
}

export interface Rotation {
  readonly kid: string;
  readonly activateAt: Date;
  /** The key it replaces and when that one stops being published; undefined on an empty database. */
  readonly replaced: { readonly kid: string; readonly retireAt: Date } | undefined;
}

/**
 * Makes a new key the signing key. It is published at once and signs from
 * `now + publishLead`, so by then every instance has re-read it and every
 * verifier has fetched it (a verifier meeting an unknown kid also refetches).
 * The replaced key stays published until the last token it can have signed
 * has expired: an instance that has not re-read the keys yet may sign with it
 * up to one reload interval after the switch, and that token lives one TTL;
 * the margin covers clock skew. Then it is retired: no longer published, so
 * verifiers drop it at their next refresh.
 */
export async function rotateSigningKey(options: RotationOptions): Promise<Rotation> {
  const candidate = await generateSigningKey();
  const activateAt = new Date(options.now.getTime() + options.publishLeadSeconds * 1000);
  const retireAt = new Date(activateAt.getTime() + options.reloadMs + (options.tokenTtlSeconds + options.retireMarginSeconds) * 1000);
  const replaced = await options.store.rotateSigningKey({ kid: candidate.kid, sealed: options.encryption.seal(candidate.kid, candidate.privateJwk), activateAt }, retireAt);
  return { kid: candidate.kid, activateAt, replaced: replaced === undefined ? undefined : { kid: replaced, retireAt } };
}
