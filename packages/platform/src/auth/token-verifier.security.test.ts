/**
 * Issue 13, point 2 (the verifier's half): a retired key stops verifying
 * within the refresh interval rather than while it stays cached; a key set
 * that cannot be refreshed is not trusted forever; tokens of the wrong type,
 * with no iat/exp, or living longer than the configured maximum are refused.
 * A token the verifier remembers as verified (it spares the signature check
 * when sent again) is refused all the same once it expires, once its key is
 * retired or replaced, and a token one character off is not taken for it.
 * The clock is injected: nothing here waits.
 */
import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from "jose";
import { Code, isRpcError } from "../rpc-errors.js";
import { createTokenVerifier, type PublicJwk, type TokenVerifierOptions } from "./token-verifier.js";

const ISSUER = "meshwork-identity";
const AUDIENCE = "meshwork";

async function newKey(kid: string) {
  const { publicKey, privateKey } = await generateKeyPair("ES256");
  const { kty, crv, x, y } = await exportJWK(publicKey);
  const jwk: PublicJwk = { kid, kty: kty!, crv: crv!, x: x!, y: y!, alg: "ES256", use: "sig" };
  return { kid, privateKey: privateKey as CryptoKey, jwk };
}

function fixture(published: PublicJwk[], overrides: Partial<TokenVerifierOptions> = {}) {
  const state = { clock: Date.UTC(2030, 0, 1), fetches: 0, failing: false, published };
  const verifier = createTokenVerifier({
    fetchKeys: async () => {
      state.fetches++;
      if (state.failing) throw new Error("identity unreachable");
      return state.published;
    },
    issuer: ISSUER,
    audience: AUDIENCE,
    now: () => state.clock,
    ...overrides,
  });
  const sign = (key: Awaited<ReturnType<typeof newKey>>, claims: Record<string, unknown> = {}, typ: string | null = "at+jwt"): Promise<string> => {
    const seconds = Math.floor(state.clock / 1000);
    const payload = { sub: "user-1", email: "ada@example.com", iss: ISSUER, aud: AUDIENCE, iat: seconds, exp: seconds + 900, ...claims };
    return new SignJWT(payload).setProtectedHeader({ alg: "ES256", kid: key.kid, ...(typ === null ? {} : { typ }) }).sign(key.privateKey);
  };
  return { verifier, state, sign };
}

const refused = async (work: Promise<unknown>, code: Code, message: RegExp): Promise<void> => {
  const error = await work.then(
    () => assert.fail("expected a refusal"),
    (caught: unknown) => caught,
  );
  assert.ok(isRpcError(error, code), `expected ${Code[code]}, got ${String(error)}`);
  assert.match(error.message, message);
};

describe("token verifier (security)", () => {
  test("a key identity stops publishing stops verifying once the refresh interval has passed, not while cached", async () => {
    const retired = await newKey("k-retired");
    const current = await newKey("k-current");
    const { verifier, state, sign } = fixture([current.jwk, retired.jwk], { refreshIntervalMs: 60_000 });
    const token = await sign(retired);
    assert.equal((await verifier.verify(token)).userId, "user-1");
    state.published = [current.jwk];
    state.clock += 59_999;
    assert.equal((await verifier.verify(token)).userId, "user-1", "within the interval the cached set still holds it");
    assert.equal(state.fetches, 1);
    state.clock += 1;
    await refused(verifier.verify(token), Code.UNAUTHENTICATED, /unknown key/);
    assert.equal(state.fetches, 2, "the stale set was fetched again before verifying");
    assert.equal((await verifier.verify(await sign(current))).userId, "user-1", "the key still published keeps verifying");
  });

  test("a refresh interval shorter than the unknown-kid rate limit still holds its bound", async () => {
    const retired = await newKey("k-retired");
    const { verifier, state, sign } = fixture([retired.jwk], { refreshIntervalMs: 2_000, refreshMinIntervalMs: 10_000 });
    const token = await sign(retired);
    await verifier.verify(token);
    state.published = [];
    state.clock += 2_000;
    await refused(verifier.verify(token), Code.UNAUTHENTICATED, /unknown key/);
  });

  test("while identity cannot be reached the known keys keep working, but only up to the maximum key-set age", async () => {
    const key = await newKey("k1");
    const { verifier, state, sign } = fixture([key.jwk], { refreshIntervalMs: 60_000, maxKeySetAgeMs: 600_000 });
    await verifier.verify(await sign(key));
    state.failing = true;
    state.clock += 300_000;
    assert.equal((await verifier.verify(await sign(key))).userId, "user-1", "a short outage signs nobody out");
    state.clock += 300_000;
    await refused(verifier.verify(await sign(key)), Code.UNAVAILABLE, /could not be fetched/);
    state.failing = false;
    state.clock += 10_000;
    assert.equal((await verifier.verify(await sign(key))).userId, "user-1", "it recovers with the next good fetch");
  });

  test("only access tokens (typ at+jwt) are accepted: a plain JWT, another type or no typ is refused", async () => {
    const key = await newKey("k1");
    const { verifier, sign } = fixture([key.jwk]);
    assert.equal((await verifier.verify(await sign(key))).userId, "user-1");
    assert.equal((await verifier.verify(await sign(key, {}, "application/at+jwt"))).userId, "user-1", "the media-type spelling of RFC 9068 is the same type");
    for (const typ of ["JWT", "id+jwt", "at+jwt+evil", null]) {
      await refused(verifier.verify(await sign(key, {}, typ)), Code.UNAUTHENTICATED, /wrong type \(typ header\), expected at\+jwt/);
    }
  });

  test("a token living longer than the maximum lifetime is refused; the maximum itself is accepted", async () => {
    const key = await newKey("k1");
    const { verifier, state, sign } = fixture([key.jwk], { maxTokenLifetimeSec: 3600 });
    const now = Math.floor(state.clock / 1000);
    assert.equal((await verifier.verify(await sign(key, { iat: now, exp: now + 3600 }))).userId, "user-1");
    await refused(verifier.verify(await sign(key, { iat: now, exp: now + 3601 })), Code.UNAUTHENTICATED, /lifetime 3601 s exceeds the maximum of 3600 s/);
    await refused(verifier.verify(await sign(key, { iat: now - 86_400 * 365, exp: now + 60 })), Code.UNAUTHENTICATED, /exceeds the maximum/);
    const defaults = fixture([key.jwk]).verifier;
    await refused(defaults.verify(await sign(key, { iat: now, exp: now + 86_400 })), Code.UNAUTHENTICATED, /exceeds the maximum of 3600 s/);
  });

  test("a token accepted and remembered is refused from the moment jose would refuse it as expired", async () => {
    const key = await newKey("k1");
    const { verifier, state, sign } = fixture([key.jwk], { clockToleranceSec: 5, refreshIntervalMs: 3_600_000 });
    const token = await sign(key);
    assert.equal((await verifier.verify(token)).userId, "user-1");
    // exp is 900 s after iat; tolerance 5 s: the last accepted millisecond, then the first refused one.
    state.clock += 905_000 - 1;
    assert.equal((await verifier.verify(token)).userId, "user-1");
    state.clock += 1;
    await refused(verifier.verify(token), Code.UNAUTHENTICATED, /token expired/);
  });

  test("a remembered token stops verifying when identity publishes other key material under its kid", async () => {
    const original = await newKey("k1");
    const replacement = await newKey("k1");
    const { verifier, state, sign } = fixture([original.jwk], { refreshIntervalMs: 60_000 });
    const token = await sign(original);
    assert.equal((await verifier.verify(token)).userId, "user-1");
    state.published = [replacement.jwk];
    state.clock += 60_000;
    await refused(verifier.verify(token), Code.UNAUTHENTICATED, /signature does not verify/);
    assert.equal((await verifier.verify(await sign(replacement))).userId, "user-1");
  });

  test("a token differing from a remembered one by a character is checked in full and refused", async () => {
    const key = await newKey("k1");
    const { verifier, sign } = fixture([key.jwk]);
    const token = await sign(key);
    assert.equal((await verifier.verify(token)).userId, "user-1");
    const [header, payload, signature] = token.split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as Record<string, unknown>;
    const forged = [header, Buffer.from(JSON.stringify({ ...claims, sub: "user-2" })).toString("base64url"), signature].join(".");
    await refused(verifier.verify(forged), Code.UNAUTHENTICATED, /signature does not verify/);
    // A character inside the signature (the last one's low bits are padding that decoders ignore).
    const flipped = `${signature.slice(0, 10)}${signature[10] === "A" ? "B" : "A"}${signature.slice(11)}`;
    await refused(verifier.verify([header, payload, flipped].join(".")), Code.UNAUTHENTICATED, /signature does not verify/);
  });

  test("a token without iat or without exp is refused", async () => {
    const key = await newKey("k1");
    const { verifier, sign } = fixture([key.jwk]);
    await refused(verifier.verify(await sign(key, { iat: undefined })), Code.UNAUTHENTICATED, /claim iat is missing or invalid/);
    await refused(verifier.verify(await sign(key, { exp: undefined })), Code.UNAUTHENTICATED, /claim exp is missing or invalid/);
  });
});
