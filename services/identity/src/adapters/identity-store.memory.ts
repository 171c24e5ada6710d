import { EmailTakenError, type UserCredentials, type UserRecord } from "../identity.js";
import type { IdentityStore } from "../ports.js";
import type { PrivateSigningJwk, StoredSigningKey } from "../signing-keys.js";

/**
 * Identity in memory, for RPC tests. Each operation runs to completion
 * without awaiting in between, which is what makes it atomic here; the shared
 * behaviour suite holds it to the knex adapter's semantics.
 */
export function createMemoryIdentityStore(clock: () => Date = () => new Date()): IdentityStore & { insertClearKeyForTest(kid: string, privateJwk: PrivateSigningJwk): void } {
  const usersByEmail = new Map<string, UserCredentials>();
  const keys: { key: StoredSigningKey; active: boolean }[] = [];

  const publicPart = ({ id, email, displayName, createdAt }: UserCredentials): UserRecord => ({ id, email, displayName, createdAt });

  return {
    async createUser(user) {
      if (usersByEmail.has(user.email)) throw new EmailTakenError();
      const stored: UserCredentials = { ...user, createdAt: clock() };
      usersByEmail.set(user.email, stored);
      return publicPart(stored);
    },

    async findUserByEmail(email) {
      const found = usersByEmail.get(email);
      return found ? { ...found } : undefined;
    },

    async updatePasswordHash(userId, passwordHash) {
      for (const [email, user] of usersByEmail) {
        if (user.id === userId) usersByEmail.set(email, { ...user, passwordHash });
      }
    },

    async claimActiveSigningKey(candidate) {
      const active = keys.find((entry) => entry.active);
      if (active) return active.key;
      if (keys.some((entry) => entry.key.kid === candidate.kid)) {
        throw new Error(`signing key ${candidate.kid} exists but is not active, and no other key is`);
      }
      const now = clock();
      const key: StoredSigningKey = { kid: candidate.kid, material: { sealed: candidate.sealed }, createdAt: now, activateAt: now, retireAt: null };
      keys.push({ key, active: true });
      return key;
    },

    async sealSigningKey(kid, sealed) {
      const entry = keys.find((candidate) => candidate.key.kid === kid);
      if (entry && "clear" in entry.key.material) entry.key = { ...entry.key, material: { sealed } };
    },

    async rotateSigningKey(candidate, retirePreviousAt) {
      const previous = keys.find((entry) => entry.active);
      if (previous) {
        previous.active = false;
        previous.key = { ...previous.key, retireAt: retirePreviousAt };
      }
      keys.push({ key: { kid: candidate.kid, material: { sealed: candidate.sealed }, createdAt: clock(), activateAt: candidate.activateAt, retireAt: null }, active: true });
      return previous?.key.kid;
    },

    /** Test seam: a row as a version before encryption at rest wrote it. */
    insertClearKeyForTest(kid: string, privateJwk: PrivateSigningJwk) {
      const now = clock();
      keys.push({ key: { kid, material: { clear: privateJwk }, createdAt: now, activateAt: now, retireAt: null }, active: !keys.some((entry) => entry.active) });
    },

    async listSigningKeys() {
      return keys.map((entry) => entry.key).sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.kid < b.kid ? -1 : a.kid > b.kid ? 1 : 0));
    },
  };
}
