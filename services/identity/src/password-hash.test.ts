import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { createPasswordHasher, formatPasswordHash, MalformedPasswordHashError, parsePasswordHash } from "./password-hash.js";

// Low N keeps these fast; the format and the checks do not depend on it.
const FAST = { N: 1024, r: 8, p: 1, keyLength: 64 };

describe("password hashes", () => {
  test("the stored form is scrypt$N$r$p$salt$hash and records its own parameters", async () => {
    const hasher = await createPasswordHasher(FAST);
    const stored = await hasher.hash("correct horse battery");
    assert.match(stored, /^scrypt\$1024\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{86}$/);
    const parsed = parsePasswordHash(stored);
    assert.deepEqual({ N: parsed.N, r: parsed.r, p: parsed.p, keyLength: parsed.keyLength }, FAST);
    assert.equal(parsed.salt.length, 16);
    assert.equal(formatPasswordHash(parsed), stored, "parse and format round-trip");
    assert.ok(!stored.includes("correct horse"), "the password is not in its hash");
  });

  test("the same password gets a different salt, hence a different hash, each time", async () => {
    const hasher = await createPasswordHasher(FAST);
    assert.notEqual(await hasher.hash("same password"), await hasher.hash("same password"));
  });

  test("verify accepts the password and refuses any other, including near misses", async () => {
    const hasher = await createPasswordHasher(FAST);
    const stored = await hasher.hash("correct horse battery");
    assert.equal(await hasher.verify("correct horse battery", stored), true);
    for (const wrong of ["correct horse batter", "Correct horse battery", "correct horse battery ", ""]) {
      assert.equal(await hasher.verify(wrong, stored), false, JSON.stringify(wrong));
    }
  });

  test("a hash made with other parameters still verifies, and is flagged for rehashing", async () => {
    const old = await createPasswordHasher({ N: 512, r: 4, p: 1, keyLength: 32 });
    const stored = await old.hash("correct horse battery");
    const current = await createPasswordHasher(FAST);
    assert.equal(await current.verify("correct horse battery", stored), true);
    assert.equal(current.needsRehash(stored), true);
    assert.equal(current.needsRehash(await current.hash("x")), false);
  });

  test("verifyNothing always answers false", async () => {
    const hasher = await createPasswordHasher(FAST);
    assert.equal(await hasher.verifyNothing("anything at all"), false);
    assert.equal(await hasher.verifyNothing(""), false);
  });

  test("malformed or out-of-bounds stored hashes are refused rather than guessed at", () => {
    const salt = Buffer.alloc(16, 1).toString("base64url");
    const hash = Buffer.alloc(64, 2).toString("base64url");
    for (const bad of [
      "",
      "plain-text-password",
      `bcrypt$1024$8$1$${salt}$${hash}`,
      `scrypt$1024$8$1$${salt}`,
      `scrypt$1000$8$1$${salt}$${hash}`,
      `scrypt$1024$8$1$${salt}$${hash}$extra`,
      `scrypt$0$8$1$${salt}$${hash}`,
      `scrypt$1024$8$1$sa=lt$${hash}`,
      `scrypt$1048576$64$1$${salt}$${hash}`,
      `scrypt$1024$8$1$${salt}$AAAA`,
    ]) {
      assert.throws(() => parsePasswordHash(bad), MalformedPasswordHashError, bad);
    }
  });
});
