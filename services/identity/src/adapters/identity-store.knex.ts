import type { Knex } from "@meshwork/platform";
import { EmailTakenError, type UserCredentials, type UserRecord } from "../identity.js";
import type { IdentityStore } from "../ports.js";
import type { PrivateSigningJwk, StoredSigningKey } from "../signing-keys.js";

interface UserRow {
  id: string;
  email: string;
  display_name: string;
  password_hash: string;
  created_at: Date;
}

interface SigningKeyRow {
  kid: string;
  /** Clear private JWK of a row written before encryption at rest; null once sealed. */
  private_jwk: string | null;
  sealed_private_key: string | null;
  kek_id: string | null;
  active: boolean;
  created_at: Date;
  activate_at: Date;
  retire_at: Date | null;
}

const toUser = (row: UserRow): UserRecord => ({
  id: row.id,
  email: row.email,
  displayName: row.display_name,
  createdAt: new Date(row.created_at),
});

const toKey = (row: SigningKeyRow): StoredSigningKey => ({
  kid: row.kid,
  material:
    row.sealed_private_key !== null && row.kek_id !== null
      ? { sealed: { kekId: row.kek_id, ciphertext: row.sealed_private_key } }
      : { clear: JSON.parse(row.private_jwk ?? "null") as PrivateSigningJwk },
  createdAt: new Date(row.created_at),
  activateAt: new Date(row.activate_at),
  retireAt: row.retire_at === null ? null : new Date(row.retire_at),
});

/**
 * Identity on knex, for PostgreSQL and PGlite alike. Both invariants live in
 * unique indexes (one account per email, one active signing key), and every
 * write is a single `insert ... on conflict do nothing`: the statement that
 * loses a race waits for the winner to commit and then inserts nothing, so no
 * lookup-then-insert window exists.
 */
export function createKnexIdentityStore(db: Knex): IdentityStore {
  return {
    async createUser(user) {
      const [row] = await db<UserRow>("users")
        .insert({ id: user.id, email: user.email, display_name: user.displayName, password_hash: user.passwordHash })
        .onConflict("email")
        .ignore()
        .returning(["id", "email", "display_name", "password_hash", "created_at"]);
      if (!row) throw new EmailTakenError();
      return toUser(row);
    },

    async findUserByEmail(email) {
      const row = await db<UserRow>("users").where({ email }).first("id", "email", "display_name", "password_hash", "created_at");
      if (!row) return undefined;
      const credentials: UserCredentials = { ...toUser(row), passwordHash: row.password_hash };
      return credentials;
    },

    async updatePasswordHash(userId, passwordHash) {
      await db("users").where({ id: userId }).update({ password_hash: passwordHash, updated_at: db.fn.now() });
    },

    async claimActiveSigningKey(candidate) {
      await db("signing_keys").insert({ kid: candidate.kid, sealed_private_key: candidate.sealed.ciphertext, kek_id: candidate.sealed.kekId, active: true }).onConflict().ignore();
      const active = await db<SigningKeyRow>("signing_keys").where({ active: true }).first();
      // Only possible when the candidate's kid is already stored as an inactive key, which a fresh key never is.
      if (!active) throw new Error(`signing key ${candidate.kid} exists but is not active, and no other key is`);
      return toKey(active);
    },

    async sealSigningKey(kid, sealed) {
      // The where clause keeps a concurrent sealing by another instance from being overwritten.
      await db("signing_keys").where({ kid }).whereNotNull("private_jwk").update({ private_jwk: null, sealed_private_key: sealed.ciphertext, kek_id: sealed.kekId });
    },

    async rotateSigningKey(candidate, retirePreviousAt) {
      return db.transaction(async (trx) => {
        // Row lock on the active key: two rotations at once run one after the other, and both keys end scheduled.
        const [previous] = await trx<SigningKeyRow>("signing_keys").where({ active: true }).update({ active: false, retire_at: retirePreviousAt }).returning(["kid"]);
        await trx("signing_keys").insert({ kid: candidate.kid, sealed_private_key: candidate.sealed.ciphertext, kek_id: candidate.sealed.kekId, active: true, activate_at: candidate.activateAt });
        return previous?.kid;
      });
    },

    async listSigningKeys() {
      const rows = await db<SigningKeyRow>("signing_keys").orderBy([
        { column: "created_at", order: "desc" },
        { column: "kid", order: "asc" },
      ]);
      return rows.map(toKey);
    },
  };
}
