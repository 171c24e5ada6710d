import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey, type JWTPayload } from "jose";
import { Code, isRpcError } from "../rpc-errors.js";
import { createTestCallContext } from "@meshwork/testing";
import { createTokenVerifier, type PublicJwk, type TokenVerifierOptions } from "./token-verifier.js";

const ISSUER = "meshwork-identity";
const AUDIENCE = "meshwork";

interface TestKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly jwk: PublicJwk;
}

async function newKey(kid: string): Promise<TestKey> {
  const { publicKey, privateKey } = await generateKeyPair("ES256");
  const { kty, crv, x, y } = await exportJWK(publicKey);
  return { kid, privateKey, jwk: { kid, kty: kty!, crv: crv!, x: x!, y: y!, alg: "ES256", use: "sig" } };
}

/** A fake identity: a key set that tests change, a fetch counter and a clock that only moves when told. */
function fixture(initial: readonly TestKey[], overrides: Partial<TokenVerifierOptions> = {}) {
  let published: readonly PublicJwk[] = initial.map((key) => key.jwk);
  let clock = Date.UTC(2030, 0, 1);
  const state = { fetches: 0, failing: false };
  const verifier = createTokenVerifier({
    fetchKeys: async () => {
      state.fetches++;
      if (state.failing) throw new Error("identity unreachable");
      return published;
    },
    issuer: ISSUER,
    audience: AUDIENCE,
    refreshMinIntervalMs: 10_000,
    now: () => clock,
    ...overrides,
  });
  /** Signs a token like identity's; `claims` override or (as undefined) remove the standard ones. */
  const sign = (key: TestKey, claims: JWTPayload = {}, header: { kid?: string; alg?: string; typ?: string | undefined } = {}): Promise<string> => {
    const seconds = Math.floor(clock / 1000);
    const payload = { sub: "user-1", email: "ada@example.com", iss: ISSUER, aud: AUDIENCE, iat: seconds, exp: seconds + 900, jti: "jti-1", ...claims };
    const typ = "typ" in header ? header.typ : "at+jwt";
    return new SignJWT(payload).setProtectedHeader({ alg: header.alg ?? "ES256", kid: header.kid ?? key.kid, ...(typ === undefined ? {} : { typ }) }).sign(key.privateKey);
  };
  return {
    verifier,
    state,
    sign,
    publish: (keys: readonly PublicJwk[]) => {
      published = keys;
    },
    advance: (ms: number) => {
      clock += ms;
    },
  };
}

const refusedWith = async (work: Promise<unknown>, code: Code, message: RegExp): Promise<void> => {
  const error = await work.then(
    () => assert.fail("expected a refusal"),
    (caught: unknown) => caught,
  );
  assert.ok(isRpcError(error, code), `expected ${Code[code]}, got ${String(error)}`);
  assert.match(error.message, message);
};

describe("token verifier", () => {
  test("a valid token yields the user id and email, and the keys are fetched once for many calls", async () => {
    const key = await newKey("k1");
    const { verifier, state, sign } = fixture([key]);
    const token = await sign(key);
    for (let i = 0; i < 5; i++) assert.deepEqual(await verifier.verify(token), { userId: "user-1", email: "ada@example.com" });
    assert.equal(state.fetches, 1);
  });

  test("authenticate reads `authorization: Bearer <token>` (scheme in any case) from the call metadata", async () => {
    const key = await newKey("k1");
    const { verifier, sign } = fixture([key]);
    const token = await sign(key);
    assert.equal((await verifier.authenticate(createTestCallContext({ headers: { authorization: `Bearer ${token}` } }))).userId, "user-1");
    assert.equal((await verifier.authenticate(createTestCallContext({ headers: { authorization: `bearer ${token}` } }))).userId, "user-1");
  });

  test("a missing or malformed authorization header is UNAUTHENTICATED saying which", async () => {
    const key = await newKey("k1");
    const { verifier, state, sign } = fixture([key]);
    const token = await sign(key);
    await refusedWith(verifier.authenticate(createTestCallContext()), Code.UNAUTHENTICATED, /^missing authorization header/);
    for (const header of [`Basic ${token}`, "Bearer", "Bearer ", `Bearer ${token} extra`, token, `Bearer:${token}`]) {
      await refusedWith(verifier.authenticate(createTestCallContext({ headers: { authorization: header } })), Code.UNAUTHENTICATED, /^malformed authorization header/);
    }
    const twice = createTestCallContext({ headers: { authorization: `Bearer ${token}` } });
    twice.metadata.add("authorization", `Bearer ${token}`);
    await refusedWith(verifier.authenticate(twice), Code.UNAUTHENTICATED, /^malformed authorization header: sent more than once/);
    assert.equal(state.fetches, 0, "a malformed header never costs a key fetch");
  });

  test("a token that is not a signed JWT, or too long, is refused as malformed", async () => {
    const key = await newKey("k1");
    const { verifier } = fixture([key]);
    await refusedWith(verifier.verify("not-a-jwt"), Code.UNAUTHENTICATED, /not a well-formed signed JWT/);
    await refusedWith(verifier.verify("a.b.c"), Code.UNAUTHENTICATED, /not a well-formed signed JWT/);
    await refusedWith(verifier.verify(""), Code.UNAUTHENTICATED, /empty/);
    await refusedWith(verifier.verify("a".repeat(9000)), Code.UNAUTHENTICATED, /too long/);
  });

  test("a forged signature is refused: another key under the same kid, or a changed payload", async () => {
    const key = await newKey("k1");
    const impostor = await newKey("k1");
    const { verifier, sign } = fixture([key]);
    await refusedWith(verifier.verify(await sign(impostor)), Code.UNAUTHENTICATED, /signature does not verify/);
    const [header, , signature] = (await sign(key)).split(".");
    const payload = Buffer.from(JSON.stringify({ sub: "admin", email: "x@example.com", iss: ISSUER, aud: AUDIENCE, iat: 1, exp: 4_000_000_000 })).toString("base64url");
    await refusedWith(verifier.verify(`${header}.${payload}.${signature}`), Code.UNAUTHENTICATED, /signature does not verify/);
  });

  test("an expired token is refused; clock skew within the tolerance is allowed", async () => {
    const key = await newKey("k1");
    const { verifier, sign, advance } = fixture([key], { clockToleranceSec: 5 });
    const token = await sign(key);
    advance(900_000 + 4_000);
    assert.equal((await verifier.verify(token)).userId, "user-1", "4 s late is within the 5 s tolerance");
    advance(2_000);
    await refusedWith(verifier.verify(token), Code.UNAUTHENTICATED, /^token expired/);
  });

  test("a wrong issuer or audience is refused naming the claim", async () => {
    const key = await newKey("k1");
    const { verifier, sign } = fixture([key]);
    await refusedWith(verifier.verify(await sign(key, { iss: "someone-else" })), Code.UNAUTHENTICATED, /wrong issuer/);
    await refusedWith(verifier.verify(await sign(key, { aud: "another-mesh" })), Code.UNAUTHENTICATED, /wrong audience/);
  });

  test("only ES256 is accepted: alg none and HMAC tokens are refused", async () => {
    const key = await newKey("k1");
    const { verifier } = fixture([key]);
    const unsigned = new UnsecuredJWT({ sub: "user-1", email: "a@b.c" }).setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime("5m").encode();
    await refusedWith(verifier.verify(unsigned), Code.UNAUTHENTICATED, /invalid token/);
    // HS256 keyed with the public x coordinate: the classic algorithm-confusion attack.
    const hmac = await new SignJWT({ email: "a@b.c" })
      .setProtectedHeader({ alg: "HS256", kid: "k1" })
      .setSubject("user-1")
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode(key.jwk.x));
    await refusedWith(verifier.verify(hmac), Code.UNAUTHENTICATED, /only ES256/);
  });

  test("a token without sub, email or kid is refused", async () => {
    const key = await newKey("k1");
    const { verifier, sign } = fixture([key]);
    await refusedWith(verifier.verify(await sign(key, { email: undefined })), Code.UNAUTHENTICATED, /no email/);
    await refusedWith(verifier.verify(await sign(key, { sub: "" })), Code.UNAUTHENTICATED, /invalid token/);
    await refusedWith(verifier.verify(await sign(key, {}, { kid: "" })), Code.UNAUTHENTICATED, /no key id/);
  });

  test("rotation: a token signed by a new key verifies after one refresh, and old tokens still verify", async () => {
    const oldKey = await newKey("k-old");
    const newer = await newKey("k-new");
    const { verifier, state, sign, publish, advance } = fixture([oldKey]);
    const oldToken = await sign(oldKey);
    await verifier.verify(oldToken);
    assert.equal(state.fetches, 1);
    publish([newer.jwk, oldKey.jwk]);
    advance(10_000);
    assert.equal((await verifier.verify(await sign(newer))).userId, "user-1");
    assert.equal(state.fetches, 2, "exactly one refresh for the new kid");
    await verifier.verify(oldToken);
    await verifier.verify(await sign(newer));
    assert.equal(state.fetches, 2, "both keys are now cached");
  });

  test("garbage kids do not make it fetch more than once per interval", async () => {
    const key = await newKey("k1");
    const { verifier, state, sign, advance } = fixture([key]);
    await verifier.verify(await sign(key));
    advance(10_000);
    for (let i = 0; i < 20; i++) {
      await refusedWith(verifier.verify(await sign(key, {}, { kid: `garbage-${i}` })), Code.UNAUTHENTICATED, /unknown key/);
      advance(100);
    }
    assert.equal(state.fetches, 2, "one fetch at first use, one refresh for all garbage within 10 s");
    advance(10_000);
    await refusedWith(verifier.verify(await sign(key, {}, { kid: "garbage-late" })), Code.UNAUTHENTICATED, /unknown key/);
    assert.equal(state.fetches, 3, "the next interval allows one more");
  });

  test("concurrent calls with an unknown kid share one fetch", async () => {
    const key = await newKey("k1");
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let fetches = 0;
    const verifier = createTokenVerifier({
      fetchKeys: async () => {
        fetches++;
        await gate;
        return [key.jwk];
      },
      issuer: ISSUER,
      audience: AUDIENCE,
    });
    const { sign } = fixture([key]);
    const token = await sign(key);
    const pending = Array.from({ length: 8 }, () => verifier.verify(token));
    release();
    const results = await Promise.all(pending);
    assert.ok(results.every((result) => result.userId === "user-1"));
    assert.equal(fetches, 1);
  });

  test("when identity cannot be reached and no key is known, the answer is UNAVAILABLE; known keys survive a failed refresh", async () => {
    const key = await newKey("k1");
    const { verifier, state, sign, advance } = fixture([key]);
    const token = await sign(key);
    state.failing = true;
    await refusedWith(verifier.verify(token), Code.UNAVAILABLE, /signing keys could not be fetched/);
    await refusedWith(verifier.verify(token), Code.UNAVAILABLE, /could not be fetched/);
    assert.equal(state.fetches, 1, "failed fetches are rate-limited too");
    // Without any key, retries back off from 250 ms (doubling), not the unknown-kid limit's 10 s.
    advance(250);
    await refusedWith(verifier.verify(token), Code.UNAVAILABLE, /could not be fetched/);
    assert.equal(state.fetches, 2, "retried after 250 ms");
    advance(250);
    await refusedWith(verifier.verify(token), Code.UNAVAILABLE, /could not be fetched/);
    assert.equal(state.fetches, 2, "the second retry waits 500 ms");
    advance(250);
    await refusedWith(verifier.verify(token), Code.UNAVAILABLE, /could not be fetched/);
    assert.equal(state.fetches, 3);
    state.failing = false;
    advance(1000);
    assert.equal((await verifier.verify(token)).userId, "user-1", "identity back: the next retry (after 1 s) verifies");
    assert.equal(state.fetches, 4);
    state.failing = true;
    advance(10_000);
    await refusedWith(verifier.verify(await sign(key, {}, { kid: "other" })), Code.UNAUTHENTICATED, /unknown key/);
    assert.equal((await verifier.verify(token)).userId, "user-1", "the cached key still works");
  });

  test("keys that are not P-256 signing keys are ignored; proto messages with empty fields are accepted", async () => {
    const key = await newKey("k1");
    const { state, sign } = fixture([key]);
    const asProto = { $typeName: "shop.identity.v1.JsonWebKey", ...key.jwk, alg: "", use: "" };
    const verifier = createTokenVerifier({
      fetchKeys: async () => {
        state.fetches++;
        return [{ ...key.jwk, kid: "rsa", kty: "RSA" }, { ...key.jwk, kid: "enc", use: "enc" }, { ...key.jwk, kid: "p384", crv: "P-384" }, { ...key.jwk, kid: "bad-point", x: "AAAA" }, asProto];
      },
      issuer: ISSUER,
      audience: AUDIENCE,
    });
    assert.equal((await verifier.verify(await sign(key))).email, "ada@example.com");
    for (const kid of ["rsa", "enc", "p384", "bad-point"]) {
      await refusedWith(verifier.verify(await sign(key, {}, { kid })), Code.UNAUTHENTICATED, /unknown key/);
    }
  });
});
