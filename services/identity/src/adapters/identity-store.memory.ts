import { EmailTakenError, type UserCredentials, type UserRecord } from "../identity.js";
import type { IdentityStore } from "../ports.js";
import type { StoredSigningKey } from "../signing-keys.js";

/**
 * Identity in memory, for RPC tests. Each operation runs to completion
 * without awaiting in between, which is what makes it atomic here; the shared
 * behaviour suite holds it to the knex adapter's semantics.
 */
export function createMemoryIdentityStore(clock: () => Date = () => new Date()): IdentityStore {
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
      const key: StoredSigningKey = { ...candidate, createdAt: clock() };
      keys.push({ key, active: true });
      return key;
    },

    async listSigningKeys() {
      return keys.map((entry) => entry.key).sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.kid < b.kid ? -1 : a.kid > b.kid ? 1 : 0));
    },
  };
}
