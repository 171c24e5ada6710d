import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey } from "jose";
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

/** A key pair as kept in the database. */
export interface StoredSigningKey {
  readonly kid: string;
  readonly privateJwk: PrivateSigningJwk;
  readonly createdAt: Date;
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

export interface SigningKeys {
  /** The key new tokens are signed with. */
  readonly signing: SigningKey;
  /** Every public key a valid token may name, the signing key first. */
  readonly jwks: readonly PublicSigningJwk[];
  /** Where the signing key came from, for the start-up log. */
  readonly source: "config" | "database" | "generated";
}

/**
 * The signing key: the one supplied by configuration, else the active one
 * in the database, else a new one. Two instances starting together on an
 * empty database each generate a candidate; the store keeps only the first
 * (one active key, enforced by a unique index) and both sign with it.
 * Keys already stored stay published, so tokens they signed keep verifying
 * after a switch to a configured key.
 */
export async function loadSigningKeys({ store, configured }: { store: IdentityStore; configured: PrivateSigningJwk | undefined }): Promise<SigningKeys> {
  let signing: SigningKey;
  let source: SigningKeys["source"];
  if (configured) {
    signing = await importSigningKey(configured.kid ?? (await thumbprintKid(configured)), configured);
    source = "config";
  } else {
    const candidate = await generateSigningKey();
    const active = await store.claimActiveSigningKey({ kid: candidate.kid, privateJwk: candidate.privateJwk });
    signing = await importSigningKey(active.kid, active.privateJwk);
    source = active.kid === candidate.kid ? "generated" : "database";
  }
  const stored = (await store.listSigningKeys()).filter((key) => key.kid !== signing.kid);
  return { signing, jwks: [signing.publicJwk, ...stored.map((key) => publicJwkOf(key.kid, key.privateJwk))], source };
}
