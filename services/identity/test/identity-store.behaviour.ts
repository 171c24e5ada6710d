/**
 * What every IdentityStore adapter must do. The same suite runs against the
 * memory adapter, knex on PGlite and knex on PostgreSQL, so they cannot drift.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import { EmailTakenError, type NewUser } from "../src/identity.js";
import type { IdentityStore } from "../src/ports.js";
import { createKeyEncryption } from "../src/key-encryption.js";
import { generateSigningKey } from "../src/signing-keys.js";

const encryption = createKeyEncryption(Buffer.alloc(32, 3));
/** A fresh key as the key ring hands it to the store: sealed. */
const sealedKey = async () => {
  const { kid, privateJwk } = await generateSigningKey();
  return { kid, sealed: encryption.seal(kid, privateJwk), privateJwk };
};

export type StoreFactory = (t: TestScope) => Promise<IdentityStore | undefined>;

const newUser = (email: string, overrides: Partial<NewUser> = {}): NewUser => ({
  id: randomUUID(),
  email,
  displayName: "Ada Lovelace",
  passwordHash: `scrypt$1024$8$1$c2FsdA$${randomUUID()}`,
  ...overrides,
});

export function identityStoreBehaviour(adapter: string, open: StoreFactory): void {
  describe(`IdentityStore behaviour: ${adapter}`, () => {
    test("a created account reads back by email, with its hash, exactly as written", async (t) => {
      const store = await open(t);
      if (!store) return;
      const input = newUser("ada@example.com", { displayName: "Ada 🧮 Lovelace" });
      const created = await store.createUser(input);
      assert.deepEqual({ ...created, createdAt: undefined }, { id: input.id, email: input.email, displayName: input.displayName, createdAt: undefined });
      assert.ok(created.createdAt instanceof Date && Math.abs(created.createdAt.getTime() - Date.now()) < 60_000);
      assert.deepEqual(await store.findUserByEmail("ada@example.com"), { ...created, passwordHash: input.passwordHash });
      assert.equal(await store.findUserByEmail("nobody@example.com"), undefined);
    });

    test("a second account with the same email is refused and the first is unchanged", async (t) => {
      const store = await open(t);
      if (!store) return;
      const first = await store.createUser(newUser("ada@example.com"));
      await assert.rejects(store.createUser(newUser("ada@example.com", { displayName: "Impostor" })), EmailTakenError);
      assert.deepEqual((await store.findUserByEmail("ada@example.com"))?.id, first.id);
      assert.equal((await store.findUserByEmail("ada@example.com"))?.displayName, "Ada Lovelace");
    });

    test("10 concurrent sign-ups of one email: exactly one account, the others EmailTakenError", async (t) => {
      const store = await open(t);
      if (!store) return;
      const attempts = Array.from({ length: 10 }, () => newUser("race@example.com"));
      const outcomes = await Promise.allSettled(attempts.map((user) => store.createUser(user)));
      const winners = outcomes.filter((outcome) => outcome.status === "fulfilled");
      assert.equal(winners.length, 1);
      assert.ok(outcomes.every((outcome) => outcome.status === "fulfilled" || outcome.reason instanceof EmailTakenError));
      assert.equal((await store.findUserByEmail("race@example.com"))?.id, winners[0]?.value.id);
    });

    test("updating a password hash touches only that account", async (t) => {
      const store = await open(t);
      if (!store) return;
      const ada = await store.createUser(newUser("ada@example.com"));
      const grace = newUser("grace@example.com");
      await store.createUser(grace);
      await store.updatePasswordHash(ada.id, "scrypt$2048$8$1$bmV3$aGFzaA");
      assert.equal((await store.findUserByEmail("ada@example.com"))?.passwordHash, "scrypt$2048$8$1$bmV3$aGFzaA");
      assert.equal((await store.findUserByEmail("grace@example.com"))?.passwordHash, grace.passwordHash);
    });

    test("the first signing key claimed becomes the active one; a later candidate gets that one back", async (t) => {
      const store = await open(t);
      if (!store) return;
      assert.deepEqual(await store.listSigningKeys(), []);
      const first = await sealedKey();
      const claimed = await store.claimActiveSigningKey(first);
      assert.deepEqual({ kid: claimed.kid, material: claimed.material }, { kid: first.kid, material: { sealed: first.sealed } }, "the sealed key reads back exactly");
      assert.deepEqual(encryption.open(claimed.kid, "sealed" in claimed.material ? claimed.material.sealed : assert.fail("not sealed")), first.privateJwk);
      assert.equal(claimed.retireAt, null);
      assert.ok(Math.abs(claimed.activateAt.getTime() - Date.now()) < 60_000, "a first key signs from now");
      const later = await store.claimActiveSigningKey(await sealedKey());
      assert.equal(later.kid, first.kid);
      assert.deepEqual(
        (await store.listSigningKeys()).map((key) => key.kid),
        [first.kid],
      );
    });

    test("concurrent first claims end with one active key that every claimant gets", async (t) => {
      const store = await open(t);
      if (!store) return;
      const candidates = await Promise.all(Array.from({ length: 6 }, () => sealedKey()));
      const claimed = await Promise.all(candidates.map((candidate) => store.claimActiveSigningKey(candidate)));
      assert.equal(new Set(claimed.map((key) => key.kid)).size, 1);
      assert.ok(candidates.some((candidate) => candidate.kid === claimed[0]?.kid));
      assert.equal((await store.listSigningKeys()).length, 1);
    });

    test("a rotation schedules the replaced key's retirement and the new key's activation, in one step", async (t) => {
      const store = await open(t);
      if (!store) return;
      const first = await store.claimActiveSigningKey(await sealedKey());
      const next = await sealedKey();
      const activateAt = new Date(Date.now() + 120_000);
      const retireAt = new Date(Date.now() + 1_200_000);
      assert.equal(await store.rotateSigningKey({ kid: next.kid, sealed: next.sealed, activateAt }, retireAt), first.kid);
      const keys = await store.listSigningKeys();
      const stored = new Map(keys.map((key) => [key.kid, key]));
      assert.equal(stored.get(first.kid)?.retireAt?.getTime(), retireAt.getTime());
      assert.equal(stored.get(next.kid)?.activateAt.getTime(), activateAt.getTime());
      assert.equal(stored.get(next.kid)?.retireAt, null);
      assert.deepEqual(stored.get(next.kid)?.material, { sealed: next.sealed });
      assert.equal((await store.claimActiveSigningKey(await sealedKey())).kid, next.kid, "the new key is now the active one");
    });

    test("sealing replaces a key's material and leaves a sealed key as it is", async (t) => {
      const store = await open(t);
      if (!store) return;
      const key = await sealedKey();
      await store.claimActiveSigningKey(key);
      await store.sealSigningKey(key.kid, encryption.seal(key.kid, key.privateJwk));
      assert.deepEqual((await store.listSigningKeys())[0]?.material, { sealed: key.sealed }, "an already sealed key is not re-sealed");
    });
  });
}
