/**
 * The card token at rest: AES-256-GCM under a key from a secret setting
 * (ORDERS_CARD_TOKEN_KEY / ORDERS_CARD_TOKEN_KEY_FILE), the order id as
 * associated data, so a sealed token copied onto another order's row does
 * not open there. The saga needs the token to authorise the payment, also
 * after a crash, so it is kept sealed until the payment step is over and then
 * erased (order-store.knex.ts).
 *
 * Sealed form: "v1.<iv>.<ciphertext+tag>", base64url, a fresh 96-bit IV each time.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { createFileOnce } from "@meshwork/platform";
import path from "node:path";

const VERSION = "v1";
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface CardTokenCipher {
  seal(orderId: string, token: string): string;
  /** Throws when the sealed token was not made by this key for this order. */
  open(orderId: string, sealed: string): string;
}

/** A key as the setting spells it: 32 bytes, base64url (or base64). Throws naming the setting otherwise. */
export function parseCardTokenKey(text: string, setting = "ORDERS_CARD_TOKEN_KEY"): Buffer {
  const trimmed = text.trim();
  const key = Buffer.from(trimmed.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, ""), "base64url");
  if (!/^[A-Za-z0-9_\-+/]+=*$/.test(trimmed) || key.length !== KEY_BYTES) {
    throw new Error(`${setting}: expected ${KEY_BYTES} random bytes in base64url (43 characters, e.g. from \`openssl rand -base64 32\`), got ${trimmed.length} characters`);
  }
  return key;
}

export function createCardTokenCipher(key: Buffer): CardTokenCipher {
  if (key.length !== KEY_BYTES) throw new Error(`card token key: expected ${KEY_BYTES} bytes, got ${key.length}`);
  return {
    seal(orderId, token) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv("aes-256-gcm", key, iv);
      cipher.setAAD(Buffer.from(orderId, "utf8"));
      const sealed = Buffer.concat([cipher.update(token, "utf8"), cipher.final(), cipher.getAuthTag()]);
      return `${VERSION}.${iv.toString("base64url")}.${sealed.toString("base64url")}`;
    },
    open(orderId, sealed) {
      const [version, ivText, bodyText] = sealed.split(".");
      if (version !== VERSION || ivText === undefined || bodyText === undefined) throw new Error(`order ${orderId}: the stored card token is not in the sealed form`);
      const iv = Buffer.from(ivText, "base64url");
      const body = Buffer.from(bodyText, "base64url");
      if (iv.length !== IV_BYTES || body.length < TAG_BYTES) throw new Error(`order ${orderId}: the stored card token is truncated`);
      const decipher = createDecipheriv("aes-256-gcm", key, iv);
      decipher.setAAD(Buffer.from(orderId, "utf8"));
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      try {
        return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]).toString("utf8");
      } catch {
        throw new Error(`order ${orderId}: the stored card token does not open with this ORDERS_CARD_TOKEN_KEY (another key, or another order's token)`);
      }
    },
  };
}

/**
 * The key when ORDERS_CARD_TOKEN_KEY is not set, so that `npm start`, `npm
 * run mesh` and the tests need no secret from the user: a random key kept in
 * `file`, made on first use. Every instance started from the same directory
 * reads the same file (createFileOnce: when two start at once, one writes it
 * and the other reads it), and a restart finds it again, so a saga resumed
 * after a crash still opens its token. A deployment sets the key (or its
 * _FILE) instead, shared by all its instances.
 */
export async function loadOrCreateKeyFile(file: string): Promise<{ key: Buffer; created: boolean }> {
  const key = randomBytes(KEY_BYTES);
  const { text, created } = await createFileOnce(file, `${key.toString("base64url")}\n`);
  return { key: created ? key : parseCardTokenKey(text, file), created };
}

export interface CardTokenKeySource {
  /** ORDERS_CARD_TOKEN_KEY (or the content of its _FILE); "" when unset. */
  readonly configured: string;
  /** ORDERS_DATABASE_URL: set means PostgreSQL, whose rows outlive this process. */
  readonly databaseUrl: string | undefined;
  /** ORDERS_DATA_DIR: the embedded database's directory ("memory://..." keeps nothing). */
  readonly dataDir: string;
}

/**
 * The key to use: the configured one; for a database that keeps nothing
 * (embedded, in memory), a random one that dies with it; otherwise the
 * generated key file beside the data directory (`.data/orders-card-token.key`
 * for the default `.data/pglite`), shared by every instance run from the
 * same directory and found again after a restart.
 */
export async function resolveCardTokenKey(source: CardTokenKeySource): Promise<{ key: Buffer; from: string }> {
  if (source.configured !== "") return { key: parseCardTokenKey(source.configured), from: "ORDERS_CARD_TOKEN_KEY" };
  if (source.databaseUrl === undefined && source.dataDir.includes("://")) return { key: randomBytes(KEY_BYTES), from: "random (in-memory database)" };
  const dir = source.dataDir.includes("://") ? ".data" : path.dirname(path.resolve(source.dataDir));
  const file = path.resolve(dir, "orders-card-token.key");
  const { key, created } = await loadOrCreateKeyFile(file);
  return { key, from: `${created ? "new " : ""}generated key file ${file}` };
}
