import type { NewUser, UserCredentials, UserRecord } from "./identity.js";
import type { SealedPrivateKey } from "./key-encryption.js";
import type { StoredSigningKey } from "./signing-keys.js";

/**
 * Where identity keeps accounts and signing keys. Adapters: knex (PostgreSQL
 * or PGlite) and memory; one behaviour suite (test/identity-store.behaviour.ts)
 * runs against all.
 */
export interface IdentityStore {
  /**
   * Stores a new account. Throws EmailTakenError when the (normalised) email
   * already has one, also when two sign-ups race: uniqueness is the store's job.
   */
  createUser(user: NewUser): Promise<UserRecord>;
  /** The account with this normalised email, with its password hash. */
  findUserByEmail(email: string): Promise<UserCredentials | undefined>;
  /** Replaces the hash of an account (parameters upgraded at sign-in). */
  updatePasswordHash(userId: string, passwordHash: string): Promise<void>;
  /**
   * Makes `candidate` the active signing key unless there already is one, and
   * returns the active key. Under any concurrency exactly one key ends active.
   */
  claimActiveSigningKey(candidate: { kid: string; sealed: SealedPrivateKey }): Promise<StoredSigningKey>;
  /** Every stored signing key, newest first. */
  listSigningKeys(): Promise<StoredSigningKey[]>;
  /** Replaces a key's clear private JWK with its sealed form (no-op when already sealed). */
  sealSigningKey(kid: string, sealed: SealedPrivateKey): Promise<void>;
  /**
   * In one transaction: the active key stops being the active one and gets
   * `retirePreviousAt`, and `candidate` becomes active, signing from its
   * `activateAt`. Returns the kid of the key it replaced, if any.
   */
  rotateSigningKey(candidate: { kid: string; sealed: SealedPrivateKey; activateAt: Date }, retirePreviousAt: Date): Promise<string | undefined>;
}
