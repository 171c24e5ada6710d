import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { describe, test } from "vitest";
import { calculateJwkThumbprint, jwtVerify, importJWK } from "jose";
import { createMemoryIdentityStore } from "./adapters/identity-store.memory.js";
import { createKeyEncryption } from "./key-encryption.js";
import { generateSigningKey, importSigningKey, openKeyRing, type PrivateSigningJwk } from "./signing-keys.js";
import type { IdentityStore } from "./ports.js";

const encryption = createKeyEncryption(Buffer.alloc(32, 7));
const loadSigningKeys = async ({ store, configured }: { store: IdentityStore; configured: PrivateSigningJwk | undefined }) => {
  const ring = await openKeyRing({ store, configured, encryption });
  return { source: ring.source, signing: ring.signingKey(), jwks: ring.published() };
};
import { createTokenIssuer } from "./tokens.js";

const p256Jwk = (): PrivateSigningJwk => {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const { crv, x, y, d } = privateKey.export({ format: "jwk" });
  return { kty: "EC", crv: crv!, x: x!, y: y!, d: d! };
};

describe("signing keys", () => {
  test("a generated key's kid is the RFC 7638 thumbprint of its public part", async () => {
    const { kid, privateJwk } = await generateSigningKey();
    assert.equal(kid, await calculateJwkThumbprint({ kty: "EC", crv: "P-256", x: privateJwk.x, y: privateJwk.y }));
    const key = await importSigningKey(kid, privateJwk);
    assert.deepEqual(key.publicJwk, { kid, kty: "EC", crv: "P-256", x: privateJwk.x, y: privateJwk.y, alg: "ES256", use: "sig" });
    assert.ok(!("d" in key.publicJwk), "the private part is never published");
  });

  test("the first start generates and stores a key; later starts sign with the stored one", async () => {
    const store = createMemoryIdentityStore();
    const first = await loadSigningKeys({ store, configured: undefined });
    assert.equal(first.source, "generated");
    const second = await loadSigningKeys({ store, configured: undefined });
    assert.equal(second.source, "database");
    assert.equal(second.signing.kid, first.signing.kid);
    assert.deepEqual(second.jwks, [first.signing.publicJwk]);
  });

  test("instances starting together agree on one key", async () => {
    const store = createMemoryIdentityStore();
    const loaded = await Promise.all(Array.from({ length: 5 }, () => loadSigningKeys({ store, configured: undefined })));
    assert.equal(new Set(loaded.map((keys) => keys.signing.kid)).size, 1);
    assert.equal((await store.listSigningKeys()).length, 1);
  });

  test("a configured key signs instead, and the keys stored before stay published so their tokens still verify", async () => {
    const store = createMemoryIdentityStore();
    const stored = await loadSigningKeys({ store, configured: undefined });
    const configured = p256Jwk();
    const keys = await loadSigningKeys({ store, configured });
    assert.equal(keys.source, "config");
    assert.equal(keys.signing.kid, await calculateJwkThumbprint({ kty: "EC", crv: "P-256", x: configured.x, y: configured.y }));
    assert.deepEqual(
      keys.jwks.map((key) => key.kid),
      [keys.signing.kid, stored.signing.kid],
    );
    assert.equal((await store.listSigningKeys()).length, 1, "a configured key is not written to the database");
    const named = await loadSigningKeys({ store, configured: { ...configured, kid: "ops-2030-01" } });
    assert.equal(named.signing.kid, "ops-2030-01", "a kid given with the JWK is kept");
  });

  test("tokens are signed with the signing key and verify with its published public key", async () => {
    const { signing } = await loadSigningKeys({ store: createMemoryIdentityStore(), configured: undefined });
    const issued = await createTokenIssuer({ key: signing, issuer: "iss", audience: "aud", ttlSeconds: 60 }).issue({
      id: "3f1c3a56-0000-4000-8000-000000000000",
      email: "ada@example.com",
      displayName: "Ada",
      createdAt: new Date(),
    });
    const { payload, protectedHeader } = await jwtVerify(issued.token, await importJWK(signing.publicJwk, "ES256"), { issuer: "iss", audience: "aud" });
    assert.equal(protectedHeader.kid, signing.kid);
    assert.equal(payload.sub, "3f1c3a56-0000-4000-8000-000000000000");
    assert.equal(issued.expiresAt.getTime(), payload.exp! * 1000);
    assert.equal(payload.exp! - payload.iat!, 60);
  });
});
