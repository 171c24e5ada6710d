/**
 * Issue 13, point 2 on a real PostgreSQL: identity's private signing keys are
 * stored only sealed under a key-encryption key (KEK) that is not in the
 * database; keys an older version stored in clear are sealed at start with
 * nothing lost; a wrong KEK stops start-up naming the setting; and
 * `npm run identity:rotate-key` makes a new key that a running instance
 * publishes, then signs with, while the old one stays published until its
 * tokens have expired and is then retired, so verifiers stop accepting it.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, test } from "vitest";
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair } from "jose";
import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { Code, ConfigError, createClient, createSilentLogger, createTokenVerifier, isRpcError, openDatabase, type RunningService } from "@meshwork/platform";
import { createTestDatabase, type TestScope } from "@meshwork/testing";
import { migrations } from "../migrations/index.js";
import { createKeyEncryption, parseKek } from "../src/key-encryption.js";
import { startIdentity } from "../src/main.js";
import { rotateIdentityKey, RotationRefusedError } from "../src/rotate-key.js";

const root = path.resolve(import.meta.dirname, "../../..");
const TEST_ENV = { IDENTITY_PORT: "0", IDENTITY_SCRYPT_N: "1024", IDENTITY_LOG_LEVEL: "error" };
const ada = { email: "ada@example.com", password: "correct horse battery", displayName: "Ada Lovelace" };
const newKek = (): string => randomBytes(32).toString("base64url");

function scratchDir(t: TestScope): string {
  const dir = mkdtempSync(path.join(tmpdir(), "identity-kek-"));
  t.onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A fresh database, and a separate connection to read (or plant) rows the service does not show. */
async function freshDatabase(t: TestScope, upTo = migrations.length) {
  const url = await createTestDatabase(t, "identity_keys");
  if (url === undefined) return undefined;
  const database = await openDatabase({ url, migrations: migrations.slice(0, upTo), migrationsTable: "identity_migrations", log: createSilentLogger() });
  t.onTestFinished(() => database.close());
  await database.migrate();
  return { url, db: database.knex };
}

async function start(t: TestScope, env: Record<string, string>) {
  const running: RunningService = await startIdentity({ ...TEST_ENV, ...env });
  t.onTestFinished(async () => {
    await running.shutdown.run("test finished");
  });
  const identity = createClient(IdentityService, { target: `127.0.0.1:${running.port}` });
  t.onTestFinished(() => identity.close());
  return identity.client;
}

const failure = (work: Promise<unknown>): Promise<unknown> =>
  work.then(
    () => assert.fail("expected a failure"),
    (caught: unknown) => caught,
  );

/** Polls `probe` until it returns a value, failing after `withinMs`: waits for an event, not for a guessed time. */
async function eventually<T>(what: string, probe: () => Promise<T | undefined>, withinMs = 20_000): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Runs `npm run identity:rotate-key` as an operator would; resolves its output, rejects with its stderr. */
async function runRotateKey(env: Record<string, string>): Promise<string> {
  const child = spawn("npm", ["run", "--silent", "identity:rotate-key"], { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, "exit")) as [number | null];
  if (code !== 0) throw new Error(`identity:rotate-key exited ${code}: ${stderr}`);
  return stdout;
}

describe("identity signing keys at rest and their rotation (security, PostgreSQL)", () => {
  test("the stored signing key holds no private key material in clear: only AES-GCM ciphertext under the configured KEK", async (t) => {
    const database = await freshDatabase(t);
    if (!database) return;
    const kek = newKek();
    const identity = await start(t, { IDENTITY_DATABASE_URL: database.url, IDENTITY_KEY_ENCRYPTION_KEY: kek });
    await identity.signUp(ada);
    const { accessToken } = await identity.signIn(ada);

    const rows = await database.db("signing_keys").select("*");
    assert.equal(rows.length, 1);
    const [row] = rows;
    assert.equal(row.kid, decodeProtectedHeader(accessToken).kid);
    assert.equal(row.private_jwk, null, "no clear JWK column value");
    const encryption = createKeyEncryption(parseKek(kek)!);
    assert.equal(row.kek_id, encryption.kekId);
    const opened = encryption.open(row.kid, { kekId: row.kek_id, ciphertext: row.sealed_private_key });
    const rowText = JSON.stringify(rows);
    assert.ok(opened.d.length >= 40, "the sealed key opens with the KEK into a private JWK");
    assert.ok(!rowText.includes(opened.d), "the private scalar d appears nowhere in the row");
    assert.ok(!rowText.includes('"d"'), "no JWK member d appears in the row");
    assert.throws(() => encryption.open("another-kid", { kekId: row.kek_id, ciphertext: row.sealed_private_key }), /does not decrypt/, "the kid is bound as associated data");
  });

  test("a key stored in clear by an earlier version is sealed at start, keeps its kid and keeps signing", async (t) => {
    const database = await freshDatabase(t, 1);
    if (!database) return;
    const { privateKey } = await generateKeyPair("ES256", { extractable: true });
    const jwk = await exportJWK(privateKey);
    await database.db("signing_keys").insert({ kid: "legacy-kid", private_jwk: JSON.stringify({ kty: "EC", crv: jwk.crv, x: jwk.x, y: jwk.y, d: jwk.d }), active: true });

    const identity = await start(t, { IDENTITY_DATABASE_URL: database.url, IDENTITY_KEY_ENCRYPTION_KEY: newKek() });
    await identity.signUp(ada);
    assert.equal(decodeProtectedHeader((await identity.signIn(ada)).accessToken).kid, "legacy-kid", "nothing lost: the old key still signs");
    assert.deepEqual(
      (await identity.getJwks({})).keys.map((key) => [key.kid, key.x]),
      [["legacy-kid", jwk.x]],
    );
    const row = await database.db("signing_keys").where({ kid: "legacy-kid" }).first();
    assert.equal(row.private_jwk, null);
    assert.ok(!JSON.stringify(row).includes(jwk.d!), "the private scalar is gone from the row");
  });

  test("a wrong KEK stops start-up with an error naming IDENTITY_KEY_ENCRYPTION_KEY; a malformed one is a config error", async (t) => {
    const database = await freshDatabase(t);
    if (!database) return;
    const dir = scratchDir(t);
    const kekFile = path.join(dir, "kek");
    writeFileSync(kekFile, `${newKek()}\n`);
    const first = await startIdentity({ ...TEST_ENV, IDENTITY_DATABASE_URL: database.url, IDENTITY_KEY_ENCRYPTION_KEY_FILE: kekFile });
    await first.shutdown.run("test");

    const wrong = await failure(startIdentity({ ...TEST_ENV, IDENTITY_DATABASE_URL: database.url, IDENTITY_KEY_ENCRYPTION_KEY: newKek() }));
    assert.match(String(wrong), /IDENTITY_KEY_ENCRYPTION_KEY/);
    assert.match(String(wrong), /encrypted under key-encryption key/);
    const malformed = await failure(startIdentity({ ...TEST_ENV, IDENTITY_DATABASE_URL: database.url, IDENTITY_KEY_ENCRYPTION_KEY: "too-short" }));
    assert.ok(malformed instanceof ConfigError, String(malformed));
    assert.match(malformed.message, /IDENTITY_KEY_ENCRYPTION_KEY \(keyEncryptionKey\): expected 32 bytes in base64url; got \(hidden\)/);

    const again = await startIdentity({ ...TEST_ENV, IDENTITY_DATABASE_URL: database.url, IDENTITY_KEY_ENCRYPTION_KEY_FILE: kekFile });
    await again.shutdown.run("test");
  });

  test("without a configured KEK one is generated once into a 0600 file outside the database and reused", async (t) => {
    const database = await freshDatabase(t);
    if (!database) return;
    const kekFile = path.join(scratchDir(t), "nested", "identity.kek");
    const env = { IDENTITY_DATABASE_URL: database.url, IDENTITY_GENERATED_KEK_PATH: kekFile };
    const first = await startIdentity({ ...TEST_ENV, ...env });
    await first.shutdown.run("test");
    assert.ok(parseKek(readFileSync(kekFile, "utf8")), "the file holds 32 bytes in base64url");
    assert.equal(statSync(kekFile).mode & 0o777, 0o600);
    const row = await database.db("signing_keys").first("kek_id");
    assert.equal(row.kek_id, createKeyEncryption(parseKek(readFileSync(kekFile, "utf8"))!).kekId);
    const identity = await start(t, env);
    assert.equal((await identity.getJwks({})).keys.length, 1, "a restart opens the key with the same file");
  });

  test("identity:rotate-key: the new key is published before it signs, the running instance switches to it, and the old key is retired after its tokens expire", async (t) => {
    const database = await freshDatabase(t);
    if (!database) return;
    const env = {
      IDENTITY_DATABASE_URL: database.url,
      IDENTITY_KEY_ENCRYPTION_KEY: newKek(),
      IDENTITY_SIGNING_KEYS_RELOAD_MS: "200",
      IDENTITY_KEY_PUBLISH_LEAD_SECONDS: "1",
      IDENTITY_TOKEN_TTL_SECONDS: "2",
      IDENTITY_KEY_RETIRE_MARGIN_SECONDS: "0",
    };
    const identity = await start(t, env);
    await identity.signUp(ada);
    const oldToken = (await identity.signIn(ada)).accessToken;
    const oldKid = decodeProtectedHeader(oldToken).kid!;

    const output = await runRotateKey(env);
    const newKid = /new signing key (\S+): published now, signs from (\S+)/.exec(output)?.[1];
    const activateAt = Date.parse(/signs from (\S+)/.exec(output)?.[1] ?? "");
    const retireAt = Date.parse(new RegExp(`replaced key ${oldKid}: published until (\\S+), then retired`).exec(output)?.[1] ?? "");
    assert.ok(newKid && newKid !== oldKid && Number.isFinite(activateAt) && Number.isFinite(retireAt), output);
    assert.equal(retireAt - activateAt, 200 + 2000, "the old key outlives the switch by one reload interval and one token lifetime");

    const bothPublished = await eventually("the running instance publishes the new key", async () => {
      const kids = (await identity.getJwks({})).keys.map((key) => key.kid);
      return kids.includes(newKid) ? kids : undefined;
    });
    assert.ok(bothPublished.includes(oldKid), "the old key stays published beside the new one");

    const newToken = await eventually("the running instance signs with the new key", async () => {
      const { accessToken } = await identity.signIn(ada);
      return decodeProtectedHeader(accessToken).kid === newKid ? accessToken : undefined;
    });
    assert.ok(decodeJwt(newToken).iat! * 1000 >= activateAt - 1000, "the new key did not sign before its activation time");

    // A verifier on a clock held inside the old token's lifetime, so what refuses it below is the retirement, not expiry.
    let verifierNow = decodeJwt(oldToken).iat! * 1000 + 500;
    const verifier = createTokenVerifier({
      fetchKeys: async () => (await identity.getJwks({})).keys,
      issuer: "meshwork-identity",
      audience: "meshwork",
      refreshIntervalMs: 1000,
      now: () => verifierNow,
    });
    assert.equal((await verifier.verify(oldToken)).email, ada.email);
    await eventually("the old key is retired", async () => ((await identity.getJwks({})).keys.some((key) => key.kid === oldKid) ? undefined : true));
    assert.ok(Date.now() >= retireAt - 1000, "the old key was published until its retirement time");
    verifierNow += 1000;
    const refused = await failure(verifier.verify(oldToken));
    assert.ok(isRpcError(refused, Code.UNAUTHENTICATED) && /unknown key/.test(refused.message), String(refused));
    assert.deepEqual(
      (await identity.getJwks({})).keys.map((key) => key.kid),
      [newKid],
    );
  });

  test("the rotation refuses to run with a KEK that does not open the stored keys, or while IDENTITY_SIGNING_KEY pins the key", async (t) => {
    const database = await freshDatabase(t);
    if (!database) return;
    const env = { ...TEST_ENV, IDENTITY_DATABASE_URL: database.url, IDENTITY_KEY_ENCRYPTION_KEY: newKek() };
    await (await startIdentity(env)).shutdown.run("test");
    const log = createSilentLogger();
    await assert.rejects(rotateIdentityKey({ ...env, IDENTITY_KEY_ENCRYPTION_KEY: newKek() }, { log }), /IDENTITY_KEY_ENCRYPTION_KEY/);
    const pinned = (await exportJWK((await generateKeyPair("ES256", { extractable: true })).privateKey)) as Record<string, unknown>;
    await assert.rejects(rotateIdentityKey({ ...env, IDENTITY_SIGNING_KEY: JSON.stringify(pinned) }, { log }), RotationRefusedError);
    assert.equal((await database.db("signing_keys").count({ n: "*" }))[0]!.n, 1, "no key was written");
  });
});
