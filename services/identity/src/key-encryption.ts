/**
 * Envelope encryption of identity's private signing keys. The database holds
 * each private JWK only as AES-256-GCM ciphertext under a key-encryption key
 * (KEK) that never enters the database, so whoever can read identity's tables
 * (a leaked backup, another service with the superuser password, anyone on a
 * database network) cannot mint tokens. The kid is the associated data: a
 * ciphertext moved onto another key's row does not decrypt.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createFileOnce } from "@meshwork/platform";
import path from "node:path";
import type { PrivateSigningJwk } from "./signing-keys.js";

/** The setting the KEK comes from; named in every error about it. */
export const KEK_SETTING = "IDENTITY_KEY_ENCRYPTION_KEY";
export const KEK_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Format version of a sealed key, first part of the stored text: a later scheme can sit beside this one. */
const FORMAT = "v1";

/** A private key as stored: which KEK sealed it, and `v1.<iv>.<ciphertext>.<tag>` in base64url. */
export interface SealedPrivateKey {
  readonly kekId: string;
  readonly ciphertext: string;
}

/** A KEK that does not open a stored key (another KEK, or a tampered row); stops start-up. */
export class KeyDecryptionError extends Error {
  override readonly name = "KeyDecryptionError";
}

export interface KeyEncryption {
  /**
   * Names the KEK without revealing it (a hash of it), stored beside each
   * sealed key: after a KEK rotation, rows still sealed under the old one are
   * recognised as such instead of failing as "tampered".
   */
  readonly kekId: string;
  seal(kid: string, jwk: PrivateSigningJwk): SealedPrivateKey;
  open(kid: string, sealed: SealedPrivateKey): PrivateSigningJwk;
}

/** 32 bytes as base64url (padding tolerated); undefined when the text is anything else. */
export function parseKek(text: string): Buffer | undefined {
  const trimmed = text.trim().replace(/=+$/, "");
  if (!/^[A-Za-z0-9_-]+$/.test(trimmed)) return undefined;
  const bytes = Buffer.from(trimmed, "base64url");
  return bytes.length === KEK_BYTES ? bytes : undefined;
}

/** A new random KEK in the text form the setting takes. */
export const generateKekText = (): string => randomBytes(KEK_BYTES).toString("base64url");

export function createKeyEncryption(kek: Buffer, source = KEK_SETTING): KeyEncryption {
  if (kek.length !== KEK_BYTES) throw new Error(`${KEK_SETTING}: expected ${KEK_BYTES} bytes`);
  const kekId = createHash("sha256").update("meshwork identity key-encryption key id\0").update(kek).digest("base64url").slice(0, 16);
  return {
    kekId,
    seal(kid, jwk) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv("aes-256-gcm", kek, iv);
      cipher.setAAD(Buffer.from(kid, "utf8"));
      const body = Buffer.concat([cipher.update(JSON.stringify({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, d: jwk.d }), "utf8"), cipher.final()]);
      return { kekId, ciphertext: [FORMAT, iv.toString("base64url"), body.toString("base64url"), cipher.getAuthTag().toString("base64url")].join(".") };
    },
    open(kid, sealed) {
      if (sealed.kekId !== kekId) {
        throw new KeyDecryptionError(
          `signing key ${kid} is encrypted under key-encryption key ${sealed.kekId}, but ${source} holds key ${kekId}: set ${KEK_SETTING} (or ${KEK_SETTING}_FILE) to the key it was encrypted with`,
        );
      }
      const [format, iv, body, tag] = sealed.ciphertext.split(".");
      if (format !== FORMAT || !iv || !body || !tag) throw new KeyDecryptionError(`signing key ${kid}: stored ciphertext is not in the ${FORMAT} format`);
      try {
        const decipher = createDecipheriv("aes-256-gcm", kek, Buffer.from(iv, "base64url"), { authTagLength: TAG_BYTES });
        decipher.setAAD(Buffer.from(kid, "utf8"));
        decipher.setAuthTag(Buffer.from(tag, "base64url"));
        const clear = Buffer.concat([decipher.update(Buffer.from(body, "base64url")), decipher.final()]).toString("utf8");
        const jwk = JSON.parse(clear) as PrivateSigningJwk;
        return { kty: "EC", crv: jwk.crv, x: jwk.x, y: jwk.y, d: jwk.d };
      } catch {
        throw new KeyDecryptionError(`signing key ${kid} does not decrypt with ${source} (${KEK_SETTING}): the row was altered or sealed under another key`);
      }
    },
  };
}

/**
 * The KEK kept in `file`, created there (0600) if absent (createFileOnce:
 * when instances race, every one reads the key that got there first).
 */
export async function loadOrCreateKekFile(file: string): Promise<Buffer> {
  const read = async (): Promise<Buffer | undefined> => {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return undefined;
      throw new Error(
        `${KEK_SETTING} is unset and the generated one at ${file} cannot be read (${code ?? String(error)}): give the key as ${KEK_SETTING}_FILE (a secret file), or set IDENTITY_GENERATED_KEK_PATH to a usable place`,
      );
    }
    const kek = parseKek(text);
    if (!kek) throw new Error(`${file} (the generated ${KEK_SETTING}) does not hold ${KEK_BYTES} bytes in base64url`);
    return kek;
  };
  const existing = await read();
  if (existing) return existing;
  try {
    await createFileOnce(file, `${generateKekText()}\n`);
  } catch (error) {
    // A container's read-only or root-owned file system: say what to configure instead.
    throw new Error(
      `${KEK_SETTING} is unset and the generated one cannot be written to ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)}): give the key as ${KEK_SETTING}_FILE (a secret file), or set IDENTITY_GENERATED_KEK_PATH to a writable place`,
    );
  }
  const created = await read();
  if (!created) throw new Error(`${file}: the generated ${KEK_SETTING} vanished right after it was written`);
  return created;
}

export interface KekSettings {
  readonly keyEncryptionKey: Buffer | undefined;
  readonly generatedKekPath: string;
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
}

/**
 * Where the KEK comes from when IDENTITY_KEY_ENCRYPTION_KEY is unset, or
 * undefined for a throw-away (memory://) database. Why a generated file and
 * not a refusal to start: `npm start`, `npm run mesh` and the tests must need
 * no secret from the user, and a file beside the data (outside the database)
 * still keeps the key away from everyone who can only read the database:
 * backups, other services, database networks. Deployments (compose,
 * Kubernetes) give the KEK as a secret file instead, IDENTITY_KEY_ENCRYPTION_KEY_FILE.
 */
export function generatedKekFile(config: Omit<KekSettings, "keyEncryptionKey">): string | undefined {
  if (config.generatedKekPath.trim() !== "") return config.generatedKekPath;
  if (config.databaseUrl !== undefined) return path.join(".data", "identity.kek");
  if (config.dataDir.startsWith("memory://")) return undefined;
  // Beside the data directory, not in it: PGlite owns that directory.
  return `${config.dataDir.replace(/[\\/]+$/, "")}-identity.kek`;
}

/** The KEK from the setting, else from (or generated into) its file, else (memory://) a fresh one for this process. */
export async function keyEncryptionFromConfig(config: KekSettings): Promise<{ encryption: KeyEncryption; source: string }> {
  if (config.keyEncryptionKey) return { encryption: createKeyEncryption(config.keyEncryptionKey), source: KEK_SETTING };
  const file = generatedKekFile(config);
  if (file === undefined) return { encryption: createKeyEncryption(randomBytes(KEK_BYTES), "a KEK generated for this memory:// database"), source: "memory" };
  return { encryption: createKeyEncryption(await loadOrCreateKekFile(file), `${file} (the KEK generated when ${KEK_SETTING} is unset)`), source: file };
}
