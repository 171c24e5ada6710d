import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

/** scrypt cost parameters (RFC 7914) and the length of the derived key. */
export interface ScryptParams {
  readonly N: number;
  readonly r: number;
  readonly p: number;
  readonly keyLength: number;
}

/** A stored hash taken apart. */
export interface ParsedPasswordHash extends ScryptParams {
  readonly salt: Buffer;
  readonly hash: Buffer;
}

export interface PasswordHasher {
  /** A new self-describing hash of the password, with a fresh random salt. */
  hash(password: string): Promise<string>;
  /** Whether the password matches the stored hash (whatever parameters it was made with). */
  verify(password: string, stored: string): Promise<boolean>;
  /**
   * Does the same work as verify() against a hash of no real password, and
   * answers false: sign-in with an unknown email calls it so that the answer
   * takes as long as a wrong password would.
   */
  verifyNothing(password: string): Promise<false>;
  /** True when the stored hash was made with other parameters than the current ones. */
  needsRehash(stored: string): boolean;
}

/** A stored hash that is not in the format this module writes. */
export class MalformedPasswordHashError extends Error {
  override readonly name = "MalformedPasswordHashError";
}

const PREFIX = "scrypt";
const SALT_BYTES = 16;
/** Bounds a stored hash may claim, so a corrupted row cannot make one sign-in allocate gigabytes. */
const MAX_MEMORY = 256 * 1024 * 1024;

/** Bytes scrypt allocates for these parameters, plus headroom for node's own check. */
const memoryFor = ({ N, r, p }: ScryptParams): number => 128 * r * (N + p + 2) + 1024 * 1024;

function derive(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  // The async form runs on libuv's thread pool: a 40 ms hash must not stall every other call.
  return new Promise((resolve, reject) => {
    scrypt(password, salt, params.keyLength, { N: params.N, r: params.r, p: params.p, maxmem: memoryFor(params) }, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

/** `scrypt$N$r$p$salt$hash`, salt and hash in base64url: every parameter travels with the hash, so they can change later. */
export function formatPasswordHash(parsed: ParsedPasswordHash): string {
  return [PREFIX, parsed.N, parsed.r, parsed.p, parsed.salt.toString("base64url"), parsed.hash.toString("base64url")].join("$");
}

const DECIMAL = /^[1-9][0-9]{0,9}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

export function parsePasswordHash(stored: string): ParsedPasswordHash {
  const parts = stored.split("$");
  const [prefix, n, r, p, salt, hash] = parts;
  if (parts.length !== 6 || prefix !== PREFIX || !n || !r || !p || !salt || !hash) {
    throw new MalformedPasswordHashError("not a scrypt$N$r$p$salt$hash password hash");
  }
  if (![n, r, p].every((part) => DECIMAL.test(part)) || !BASE64URL.test(salt) || !BASE64URL.test(hash)) {
    throw new MalformedPasswordHashError("password hash has malformed parts");
  }
  const parsed: ParsedPasswordHash = {
    N: Number(n),
    r: Number(r),
    p: Number(p),
    salt: Buffer.from(salt, "base64url"),
    hash: Buffer.from(hash, "base64url"),
    keyLength: Buffer.from(hash, "base64url").length,
  };
  if ((parsed.N & (parsed.N - 1)) !== 0 || parsed.N < 2 || parsed.p > 16 || 128 * parsed.N * parsed.r > MAX_MEMORY || parsed.keyLength < 16) {
    throw new MalformedPasswordHashError("password hash has parameters out of bounds");
  }
  return parsed;
}

async function hashWith(password: string, params: ScryptParams): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  return formatPasswordHash({ ...params, salt, hash: await derive(password, salt, params) });
}

async function matches(password: string, parsed: ParsedPasswordHash): Promise<boolean> {
  const derived = await derive(password, parsed.salt, parsed);
  // Lengths are equal by construction (keyLength comes from the stored hash);
  // the constant-time compare keeps the comparison from leaking a prefix match.
  return timingSafeEqual(derived, parsed.hash);
}

/**
 * Hashes new passwords with `params` and verifies any stored hash with the
 * parameters it records. Async because it prepares the stand-in hash that
 * verifyNothing() checks against, with the same parameters as new hashes.
 */
export async function createPasswordHasher(params: ScryptParams): Promise<PasswordHasher> {
  const standIn = parsePasswordHash(await hashWith(randomBytes(32).toString("base64url"), params));
  return {
    hash: (password) => hashWith(password, params),
    async verify(password, stored) {
      return matches(password, parsePasswordHash(stored));
    },
    async verifyNothing(password) {
      await matches(password, standIn);
      return false;
    },
    needsRehash(stored) {
      const parsed = parsePasswordHash(stored);
      return parsed.N !== params.N || parsed.r !== params.r || parsed.p !== params.p || parsed.keyLength !== params.keyLength;
    },
  };
}
