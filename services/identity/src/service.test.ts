import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { GetJwksRequestSchema, SignInRequestSchema, SignUpRequestSchema } from "@meshwork/contracts/shop/identity/v1/identity";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { Code, createTokenVerifier, isRpcError } from "@meshwork/platform";
import { createTestCallContext, rejectsWith } from "@meshwork/testing";
import { createMemoryIdentityStore } from "./adapters/identity-store.memory.js";
import { createPasswordHasher, parsePasswordHash, type ScryptParams } from "./password-hash.js";
import type { IdentityStore } from "./ports.js";
import { createIdentityHandlers } from "./service.js";
import { generateSigningKey, importSigningKey } from "./signing-keys.js";
import { createTokenIssuer } from "./tokens.js";

const ISSUER = "meshwork-identity";
const AUDIENCE = "meshwork";
/** Low N keeps the suite fast; the timing test below uses more work on purpose. */
const FAST: ScryptParams = { N: 1024, r: 8, p: 1, keyLength: 64 };

async function handlers(options: { store?: IdentityStore; scrypt?: ScryptParams; now?: () => Date } = {}) {
  const store = options.store ?? createMemoryIdentityStore();
  const writes = { createUser: 0 };
  const counted: IdentityStore = {
    ...store,
    createUser: (user) => {
      writes.createUser++;
      return store.createUser(user);
    },
  };
  const generated = await generateSigningKey();
  const key = await importSigningKey(generated.kid, generated.privateJwk);
  const passwords = await createPasswordHasher(options.scrypt ?? FAST);
  const tokens = createTokenIssuer({ key, issuer: ISSUER, audience: AUDIENCE, ttlSeconds: 900, ...(options.now ? { clock: options.now } : {}) });
  const handlers = createIdentityHandlers({ store: counted, passwords, tokens, jwks: [key.publicJwk] });
  // Requests built as the server would deserialize them.
  const identity = {
    signUp: (input: MessageInitShape<typeof SignUpRequestSchema>) => handlers.signUp(create(SignUpRequestSchema, input), context),
    signIn: (input: MessageInitShape<typeof SignInRequestSchema>) => handlers.signIn(create(SignInRequestSchema, input), context),
    getJwks: () => handlers.getJwks(create(GetJwksRequestSchema), context),
  };
  return { identity, store, writes, kid: key.kid };
}

const context = createTestCallContext();

const failure = async (work: Promise<unknown>): Promise<unknown> =>
  work.then(
    () => assert.fail("expected an error"),
    (caught: unknown) => caught,
  );

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};

const ada = { email: "Ada@Example.com ", password: "correct horse battery", displayName: "  Ada Lovelace " };

describe("identity RPC handlers", () => {
  test("SignUp stores the account with a normalised email and trimmed name, and only a scrypt hash of the password", async () => {
    const { identity, store } = await handlers();
    const { user } = await identity.signUp(ada);
    assert.match(user!.id!, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(user!.email, "ada@example.com");
    assert.equal(user!.displayName, "Ada Lovelace");
    assert.ok(user!.createTime);
    const stored = await store.findUserByEmail("ada@example.com");
    assert.equal(stored?.id, user!.id);
    assert.equal(parsePasswordHash(stored!.passwordHash).N, FAST.N);
    assert.ok(!stored!.passwordHash.includes(ada.password));
  });

  test("SignIn issues an ES256 token with kid, sub, email, iss, aud, iat, exp and jti that verifies with the keys GetJwks publishes", async () => {
    const now = new Date("2030-01-01T00:00:00Z");
    const { identity, kid } = await handlers({ now: () => now });
    const { user } = await identity.signUp(ada);
    const signedIn = await identity.signIn({ email: "ADA@example.com", password: ada.password });
    assert.equal(signedIn.user?.id, user!.id);
    assert.deepEqual(decodeProtectedHeader(signedIn.accessToken!), { alg: "ES256", kid, typ: "at+jwt" });
    const claims = decodeJwt(signedIn.accessToken!);
    assert.equal(claims.sub, user!.id);
    assert.equal(claims.email, "ada@example.com");
    assert.equal(claims.iss, ISSUER);
    assert.equal(claims.aud, AUDIENCE);
    assert.equal(claims.iat, now.getTime() / 1000);
    assert.equal(claims.exp, now.getTime() / 1000 + 900);
    assert.equal(Number(signedIn.expireTime!.seconds), claims.exp);
    assert.equal(typeof claims.jti, "string");

    const verifier = createTokenVerifier({
      fetchKeys: async () => (await identity.getJwks()).keys!.map((key) => ({ ...key, kty: key.kty ?? "" })),
      issuer: ISSUER,
      audience: AUDIENCE,
      now: () => now.getTime(),
    });
    const authenticated = await verifier.authenticate(createTestCallContext({ headers: { authorization: `Bearer ${signedIn.accessToken}` } }));
    assert.deepEqual(authenticated, { userId: user!.id, email: "ada@example.com" });

    const again = await identity.signIn({ email: ada.email, password: ada.password });
    assert.notEqual(decodeJwt(again.accessToken!).jti, claims.jti, "every token has its own jti");
  });

  test("GetJwks publishes the public key only: kid, EC, P-256, x, y, ES256, sig", async () => {
    const { identity, kid } = await handlers();
    const { keys } = await identity.getJwks();
    assert.equal(keys!.length, 1);
    const [key] = keys!;
    assert.deepEqual(Object.keys(key!).sort(), ["alg", "crv", "kid", "kty", "use", "x", "y"]);
    assert.deepEqual({ ...key, x: undefined, y: undefined }, { kid, kty: "EC", crv: "P-256", alg: "ES256", use: "sig", x: undefined, y: undefined });
    assert.match(key!.x!, /^[A-Za-z0-9_-]{43}$/);
    assert.match(key!.y!, /^[A-Za-z0-9_-]{43}$/);
  });

  test("a second sign-up with the same email, in any case, is ALREADY_EXISTS and leaves the first account as it was", async () => {
    const { identity, store } = await handlers();
    const { user } = await identity.signUp(ada);
    await rejectsWith(identity.signUp({ email: "ADA@EXAMPLE.COM", password: "another password", displayName: "Impostor" }), Code.ALREADY_EXISTS, /already exists/);
    const stored = await store.findUserByEmail("ada@example.com");
    assert.equal(stored?.id, user!.id);
    assert.equal(stored?.displayName, "Ada Lovelace");
    await identity.signIn({ email: ada.email, password: ada.password });
  });

  test("a wrong password and an unknown email get the same UNAUTHENTICATED answer", async () => {
    const { identity } = await handlers();
    await identity.signUp(ada);
    const wrongPassword = await failure(identity.signIn({ email: ada.email, password: "not the password" }));
    const unknownEmail = await failure(identity.signIn({ email: "nobody@example.com", password: "not the password" }));
    assert.ok(isRpcError(wrongPassword, Code.UNAUTHENTICATED));
    assert.ok(isRpcError(unknownEmail, Code.UNAUTHENTICATED));
    assert.equal(wrongPassword.message, unknownEmail.message);
    assert.equal(wrongPassword.message, "email or password is incorrect");
    assert.deepEqual(wrongPassword.metadata.getMap(), unknownEmail.metadata.getMap());
  });

  test("a wrong password and an unknown email take similar time, because both run one scrypt", async () => {
    // Enough work per hash (about 9 ms here) that the scrypt dominates. Each
    // round times the two paths back to back, alternating which goes first,
    // and the median of the per-round ratios is compared: load from other
    // processes shifts both halves of a round alike and cancels out.
    const { identity } = await handlers({ scrypt: { N: 4096, r: 8, p: 1, keyLength: 64 } });
    await identity.signUp(ada);
    const timed = async (email: string): Promise<number> => {
      const started = process.hrtime.bigint();
      await failure(identity.signIn({ email, password: "not the password" }));
      return Number(process.hrtime.bigint() - started) / 1e6;
    };
    await timed(ada.email);
    await timed("nobody@example.com");
    const rounds: { wrong: number; unknown: number }[] = [];
    for (let round = 0; round < 15; round++) {
      if (round % 2 === 0) {
        const wrong = await timed(ada.email);
        rounds.push({ wrong, unknown: await timed("nobody@example.com") });
      } else {
        const unknown = await timed("nobody@example.com");
        rounds.push({ unknown, wrong: await timed(ada.email) });
      }
    }
    const ratio = median(rounds.map((round) => round.unknown / round.wrong));
    const shown = rounds.map((round) => `${round.unknown.toFixed(1)}/${round.wrong.toFixed(1)}`).join(" ");
    assert.ok(ratio > 0.5 && ratio < 2, `median ratio unknown/wrong ${ratio.toFixed(2)}; ms per round (unknown/wrong): ${shown}`);
  });

  test("bad sign-up input is INVALID_ARGUMENT naming the field, and nothing is written", async () => {
    const { identity, writes } = await handlers();
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ ...ada, email: "" }, "email", /^email: is required/],
      [{ ...ada, email: "no-at-sign" }, "email", /^email: must contain exactly one @/],
      [{ ...ada, email: `${"a".repeat(250)}@x.io` }, "email", /^email: must be at most 254/],
      [{ ...ada, email: "a b@example.com" }, "email", /^email: must not contain spaces/],
      [{ ...ada, password: "short" }, "password", /^password: must be 8 to 128 characters/],
      [{ ...ada, password: "p".repeat(129) }, "password", /^password: must be 8 to 128/],
      [{ ...ada, displayName: "   " }, "display_name", /^display_name: must be 1 to 80/],
      [{ ...ada, displayName: "n".repeat(81) }, "display_name", /^display_name: must be 1 to 80/],
    ];
    for (const [input, field, message] of cases) {
      const error = await failure(identity.signUp(input));
      assert.ok(isRpcError(error, Code.INVALID_ARGUMENT), `expected INVALID_ARGUMENT for ${field}, got ${String(error)}`);
      assert.equal(error.field, field);
      assert.match(error.message, message);
    }
    assert.equal(writes.createUser, 0);
  });

  test("bad sign-in input is INVALID_ARGUMENT naming the field", async () => {
    const { identity } = await handlers();
    await rejectsWith(identity.signIn({ email: "", password: "whatever1" }), Code.INVALID_ARGUMENT, /^email: is required/);
    await rejectsWith(identity.signIn({ email: "a@b.c", password: "" }), Code.INVALID_ARGUMENT, /^password: is required/);
    await rejectsWith(identity.signIn({ email: "a@b.c", password: "p".repeat(129) }), Code.INVALID_ARGUMENT, /^password: must be at most 128/);
  });

  test("a hash made with older scrypt parameters is upgraded at the next successful sign-in", async () => {
    const store = createMemoryIdentityStore();
    const before = await handlers({ store, scrypt: { N: 512, r: 8, p: 1, keyLength: 32 } });
    await before.identity.signUp(ada);
    const after = await handlers({ store, scrypt: FAST });
    await failure(after.identity.signIn({ email: ada.email, password: "wrong password" }));
    assert.equal(parsePasswordHash((await store.findUserByEmail("ada@example.com"))!.passwordHash).N, 512, "a failed sign-in changes nothing");
    await after.identity.signIn({ email: ada.email, password: ada.password });
    const upgraded = parsePasswordHash((await store.findUserByEmail("ada@example.com"))!.passwordHash);
    assert.deepEqual({ N: upgraded.N, keyLength: upgraded.keyLength }, { N: FAST.N, keyLength: FAST.keyLength });
    await after.identity.signIn({ email: ada.email, password: ada.password });
  });
});
