/**
 * Issue 13, point 2: the rotation schedule on an injected clock. A new key is
 * published before it signs; the key it replaces stays published until its
 * last token can have expired, and not a moment longer.
 */
import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { createMemoryIdentityStore } from "./adapters/identity-store.memory.js";
import { createKeyEncryption } from "./key-encryption.js";
import { generateSigningKey, openKeyRing, rotateSigningKey } from "./signing-keys.js";

const encryption = createKeyEncryption(Buffer.alloc(32, 5));
const schedule = { publishLeadSeconds: 120, reloadMs: 30_000, tokenTtlSeconds: 900, retireMarginSeconds: 60 };

describe("signing key rotation (security)", () => {
  test("published first, signing after the lead, the old key retired exactly when its last token has expired", async () => {
    const clock = { now: Date.UTC(2030, 0, 1) };
    const store = createMemoryIdentityStore(() => new Date(clock.now));
    const ring = await openKeyRing({ store, configured: undefined, encryption, clock: () => new Date(clock.now) });
    const oldKid = ring.signingKey().kid;

    clock.now += 5_000;
    const rotation = await rotateSigningKey({ store, encryption, now: new Date(clock.now), ...schedule });
    assert.equal(rotation.replaced?.kid, oldKid);
    assert.equal(rotation.activateAt.getTime(), clock.now + 120_000);
    assert.equal(rotation.replaced?.retireAt.getTime(), rotation.activateAt.getTime() + 30_000 + 900_000 + 60_000);

    assert.deepEqual(
      ring.published().map((key) => key.kid),
      [oldKid],
      "an instance knows only what it has read",
    );
    clock.now += 30_000;
    await ring.reload();
    assert.equal(ring.signingKey().kid, oldKid, "read, but not signing yet");
    assert.deepEqual(
      ring.published().map((key) => key.kid),
      [oldKid, rotation.kid],
      "published before it signs",
    );

    clock.now = rotation.activateAt.getTime();
    assert.equal(ring.signingKey().kid, rotation.kid, "signs from its activation time, without another read");
    assert.deepEqual(
      ring.published().map((key) => key.kid),
      [rotation.kid, oldKid],
    );

    clock.now = rotation.replaced!.retireAt.getTime() - 1;
    assert.ok(
      ring.published().some((key) => key.kid === oldKid),
      "still published while a token it signed may be valid",
    );
    clock.now += 1;
    assert.deepEqual(
      ring.published().map((key) => key.kid),
      [rotation.kid],
      "retired: no longer published",
    );
  });

  test("a key an earlier version stored in clear is sealed when the ring opens, and keeps signing", async () => {
    const store = createMemoryIdentityStore();
    const legacy = await generateSigningKey();
    store.insertClearKeyForTest(legacy.kid, legacy.privateJwk);
    const ring = await openKeyRing({ store, configured: undefined, encryption });
    assert.equal(ring.signingKey().kid, legacy.kid);
    const [stored] = await store.listSigningKeys();
    assert.ok(stored && "sealed" in stored.material, "sealed at open");
    assert.ok(!JSON.stringify(stored).includes(legacy.privateJwk.d));
  });
});
