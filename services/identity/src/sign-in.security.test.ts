/**
 * Issue 13, point 5 (identity's half): sign-in is throttled per account and
 * per client address with exponential back-off, a throttled attempt runs no
 * scrypt, and password hashing is bounded so a flood of sign-ins neither
 * hashes without limit nor starves other work of libuv's thread pool.
 * Time-based rules run on an injected clock; the flood is judged by the
 * order in which things complete, not by wall-clock durations.
 */
import assert from "node:assert/strict";
import { stat } from "node:fs/promises";
import { describe, test } from "vitest";
import { create } from "@bufbuild/protobuf";
import { GetJwksRequestSchema, SignInRequestSchema, SignUpRequestSchema } from "@meshwork/contracts/shop/identity/v1/identity";
import { Code, isRpcError, type CallContext } from "@meshwork/platform";
import { createTestCallContext } from "@meshwork/testing";
import { createMemoryIdentityStore } from "./adapters/identity-store.memory.js";
import { createHashLimiter, limitPasswordHasher } from "./hash-limiter.js";
import { createPasswordHasher, type PasswordHasher } from "./password-hash.js";
import { createIdentityHandlers, RETRY_AFTER_TRAILER } from "./service.js";
import { addressOfPeer, CLIENT_ADDRESS_HEADER, clientAddress, createSignInThrottle, throttleKeyOfAddress } from "./sign-in-throttle.js";
import { generateSigningKey, importSigningKey } from "./signing-keys.js";
import { createTokenIssuer } from "./tokens.js";

const PASSWORD = "correct horse battery";
const policy = { baseDelayMs: 1000, maxDelayMs: 8000, windowMs: 600_000 };

/** A hasher that records each scrypt it completes, so a test can tell "refused before hashing" from "hashed and refused". */
function counting(hasher: PasswordHasher, events: string[]): PasswordHasher {
  const counted =
    <A extends unknown[], R>(work: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      try {
        return await work(...args);
      } finally {
        events.push("hash");
      }
    };
  return { hash: counted(hasher.hash), verify: counted(hasher.verify), verifyNothing: counted(hasher.verifyNothing), needsRehash: hasher.needsRehash };
}

async function setup(options: { throttle?: boolean; limit?: { concurrency: number; queueLimit: number }; N?: number } = {}) {
  const clock = { now: Date.UTC(2030, 0, 1) };
  const events: string[] = [];
  const real = counting(await createPasswordHasher({ N: options.N ?? 1024, r: 8, p: 1, keyLength: 64 }), events);
  const passwords = options.limit ? limitPasswordHasher(real, createHashLimiter(options.limit)) : real;
  const generated = await generateSigningKey();
  const key = await importSigningKey(generated.kid, generated.privateJwk);
  const tokens = createTokenIssuer({ key, issuer: "meshwork-identity", audience: "meshwork", ttlSeconds: 900 });
  const throttle = options.throttle ? createSignInThrottle({ account: { ...policy, freeFailures: 5 }, address: { ...policy, freeFailures: 20 }, now: () => clock.now }) : undefined;
  const handlers = createIdentityHandlers({ store: createMemoryIdentityStore(), passwords, tokens, jwks: [key.publicJwk], ...(throttle ? { throttle } : {}) });
  const from = (address: string): CallContext => createTestCallContext({ headers: { [CLIENT_ADDRESS_HEADER]: address } });
  const defaultContext = from("203.0.113.7");
  return {
    clock,
    events,
    hashes: () => events.filter((event) => event === "hash").length,
    signUp: (email: string) => handlers.signUp(create(SignUpRequestSchema, { email, password: PASSWORD, displayName: "Ada" }), defaultContext),
    signIn: (email: string, password: string, context: CallContext = defaultContext) => handlers.signIn(create(SignInRequestSchema, { email, password }), context),
    getJwks: () => handlers.getJwks(create(GetJwksRequestSchema), defaultContext),
    from,
  };
}

const outcome = (work: Promise<unknown>): Promise<unknown> =>
  work.then(
    () => "ok",
    (error: unknown) => error,
  );

function assertThrottled(error: unknown, retryAfterSeconds: number, scope: RegExp): void {
  assert.ok(isRpcError(error, Code.RESOURCE_EXHAUSTED), `expected RESOURCE_EXHAUSTED, got ${String(error)}`);
  assert.match(error.message, new RegExp(`retry after ${retryAfterSeconds} s`));
  assert.match(error.message, scope);
  assert.equal(error.metadata.get(RETRY_AFTER_TRAILER)[0], String(retryAfterSeconds));
}

describe("sign-in throttle and bounded hashing (security)", () => {
  test("after 5 failures an account waits 1 s, then 2 s, 4 s... capped; a waiting attempt runs no scrypt, even with the right password", async () => {
    const identity = await setup({ throttle: true });
    await identity.signUp("ada@example.com");
    const before = identity.hashes();
    for (let i = 0; i < 5; i++) assert.ok(isRpcError(await outcome(identity.signIn("ada@example.com", "wrong password")), Code.UNAUTHENTICATED));
    assert.equal(identity.hashes(), before + 5);
    assertThrottled(await outcome(identity.signIn("ada@example.com", PASSWORD)), 1, /for this email/);
    assertThrottled(await outcome(identity.signIn("ADA@example.com ", "wrong password")), 1, /for this email/);
    assert.equal(identity.hashes(), before + 5, "refused attempts hashed nothing");

    const waits: number[] = [];
    for (let i = 0; i < 5; i++) {
      const refused = await outcome(identity.signIn("ada@example.com", "wrong password"));
      assert.ok(isRpcError(refused, Code.RESOURCE_EXHAUSTED));
      const seconds = Number(refused.metadata.get(RETRY_AFTER_TRAILER)[0]);
      waits.push(seconds);
      identity.clock.now += seconds * 1000;
      assert.ok(isRpcError(await outcome(identity.signIn("ada@example.com", "wrong password")), Code.UNAUTHENTICATED), "after the wait one more try is allowed");
    }
    assert.deepEqual(waits, [1, 2, 4, 8, 8], "the wait doubles up to the 8 s cap");
  });

  test("a success after waiting resets the account's count; an unknown email is throttled exactly like a known one", async () => {
    const identity = await setup({ throttle: true });
    await identity.signUp("ada@example.com");
    for (let i = 0; i < 5; i++) await outcome(identity.signIn("ada@example.com", "wrong password"));
    identity.clock.now += 1000;
    assert.equal(await outcome(identity.signIn("ada@example.com", PASSWORD)), "ok");
    for (let i = 0; i < 5; i++) assert.ok(isRpcError(await outcome(identity.signIn("ada@example.com", "wrong password")), Code.UNAUTHENTICATED), "five fresh failures allowed again");
    assertThrottled(await outcome(identity.signIn("ada@example.com", "wrong password")), 1, /for this email/);

    for (let i = 0; i < 5; i++) await outcome(identity.signIn("nobody@example.com", "wrong password", identity.from("198.51.100.1")));
    assertThrottled(await outcome(identity.signIn("nobody@example.com", "wrong password", identity.from("198.51.100.1"))), 1, /for this email/);
  });

  test("one address trying many emails is throttled after 20 failures; other addresses are not", async () => {
    const identity = await setup({ throttle: true });
    const attacker = identity.from("192.0.2.66");
    for (let i = 0; i < 20; i++) assert.ok(isRpcError(await outcome(identity.signIn(`victim${i}@example.com`, "guess", attacker)), Code.UNAUTHENTICATED));
    const hashes = identity.hashes();
    assertThrottled(await outcome(identity.signIn("fresh@example.com", "guess", attacker)), 1, /from this address/);
    assert.equal(identity.hashes(), hashes);
    assert.ok(isRpcError(await outcome(identity.signIn("fresh@example.com", "guess", identity.from("192.0.2.67"))), Code.UNAUTHENTICATED), "another address is unaffected");
  });

  test("the address comes from the gateway's x-meshwork-client-address, else the peer; IPv6 counts per /64", () => {
    const metadata = (value?: string) => ({ get: (key: string) => (key === CLIENT_ADDRESS_HEADER && value !== undefined ? [value] : []) });
    assert.equal(clientAddress(metadata("203.0.113.9"), "127.0.0.1:5000"), "203.0.113.9");
    assert.equal(clientAddress(metadata(), "127.0.0.1:5000"), "127.0.0.1");
    assert.equal(clientAddress(metadata("not an address"), "ipv4:10.1.2.3:80"), "10.1.2.3", "a malformed header is not a key an attacker can vary");
    assert.equal(addressOfPeer("[2001:db8::1]:443"), "2001:db8::1");
    assert.equal(throttleKeyOfAddress("2001:db8:0:1:aaaa::1"), throttleKeyOfAddress("2001:0db8:0000:0001:bbbb:cccc:dddd:eeee"));
    assert.notEqual(throttleKeyOfAddress("2001:db8:0:1::1"), throttleKeyOfAddress("2001:db8:0:2::1"));
    assert.equal(throttleKeyOfAddress("::ffff:192.0.2.1"), "192.0.2.1");
    assert.equal(throttleKeyOfAddress("192.0.2.1"), "192.0.2.1");
  });

  test("a flood beyond the hashing queue is refused at once with RESOURCE_EXHAUSTED and hashes nothing", async () => {
    const identity = await setup({ limit: { concurrency: 1, queueLimit: 3 } });
    const flood = await Promise.all(Array.from({ length: 40 }, (_, i) => outcome(identity.signIn(`nobody${i}@example.com`, "wrong password"))));
    const refused = flood.filter((result) => isRpcError(result, Code.RESOURCE_EXHAUSTED));
    const answered = flood.filter((result) => isRpcError(result, Code.UNAUTHENTICATED));
    assert.equal(answered.length, 4, "one running and three queued were hashed and answered");
    assert.equal(refused.length, 36);
    assert.equal(identity.hashes(), 4, "the 36 refused ones ran no scrypt");
    assert.ok(refused.every((error) => isRpcError(error) && error.metadata.get(RETRY_AFTER_TRAILER)[0] === "1"));
  });

  test("during a flood of sign-ins, thread-pool work (a file stat) and GetJwks complete before all but the hashes already running", async () => {
    // 40 sign-ins, all admitted to the queue. Unbounded, 40 scrypt jobs would sit in
    // libuv's 4-thread pool ahead of the stat, which would finish near the end.
    const identity = await setup({ limit: { concurrency: 2, queueLimit: 64 }, N: 4096 });
    const flood = Array.from({ length: 40 }, (_, i) => outcome(identity.signIn(`nobody${i}@example.com`, "wrong password")));
    // One macrotask: every sign-in has reached the hasher (the memory store answers in microtasks).
    await new Promise((resolve) => setImmediate(resolve));
    const probe = stat(import.meta.filename).then(() => identity.events.push("stat"));
    const jwks = identity.getJwks().then(() => identity.events.push("jwks"));
    await Promise.all([probe, jwks]);
    const results = await Promise.all(flood);
    assert.ok(
      results.every((result) => isRpcError(result, Code.UNAUTHENTICATED)),
      "every queued sign-in was answered",
    );
    const hashesBefore = (event: string) => identity.events.slice(0, identity.events.indexOf(event)).filter((entry) => entry === "hash").length;
    assert.ok(hashesBefore("stat") <= 2, `the stat waited for ${hashesBefore("stat")} hashes; at most the 2 running may finish first (order: ${identity.events.join(",")})`);
    assert.ok(hashesBefore("jwks") <= 2, `GetJwks waited for ${hashesBefore("jwks")} hashes`);
    assert.equal(identity.hashes(), 40);
  });
});
