/**
 * Identity as it runs: the real server on port 0, over real gRPC, on a fresh
 * PostgreSQL database (skipped without one, failing in CI). Tokens are checked
 * with the platform verifier every other service uses, fed by GetJwks.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { once } from "node:events";
import path from "node:path";
import { describe, test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import { decodeProtectedHeader } from "jose";
import { Health, HealthCheckResponse_ServingStatus } from "@meshwork/contracts/health/v1/health";
import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { Code, ConfigError, createClient, createLogger, createSilentLogger, createTokenVerifier, isRpcError, openDatabase, type Knex, type Logger, type RunningService } from "@meshwork/platform";
import { createTestCallContext, createTestDatabase, startServiceProcess } from "@meshwork/testing";
import { migrations } from "../migrations/index.js";
import { startIdentity } from "../src/main.js";

const mainFile = path.resolve(import.meta.dirname, "../src/main.ts");

/** A low scrypt N keeps sign-ups fast here; the stored hash records it, production uses the default. */
const TEST_ENV = { IDENTITY_PORT: "0", IDENTITY_SCRYPT_N: "1024", IDENTITY_LOG_LEVEL: "error" };

async function freshDatabase(t: TestScope) {
  const url = await createTestDatabase(t, "identity_int");
  if (url === undefined) return undefined;
  // A separate connection to look at the rows the service wrote.
  const database = await openDatabase({ url, migrations, migrationsTable: "identity_migrations", log: createSilentLogger() });
  t.onTestFinished(() => database.close());
  return { url, db: database.knex };
}

/** Starts identity on `url`; the returned stop() is idempotent, and runs at the end of the test anyway. */
async function start(t: TestScope, url: string, env: Record<string, string> = {}, log?: Logger) {
  const running: RunningService = await startIdentity({ ...TEST_ENV, IDENTITY_DATABASE_URL: url, ...env }, { log });
  let stopped: Promise<unknown> | undefined;
  const stop = (): Promise<unknown> => (stopped ??= running.shutdown.run("test finished"));
  t.onTestFinished(async () => {
    await stop();
  });
  const target = `127.0.0.1:${running.port}`;
  const identity = createClient(IdentityService, { target });
  const health = createClient(Health, { target });
  t.onTestFinished(() =>
    [identity, health].forEach((client) => {
      client.close();
    }),
  );
  const verifier = createTokenVerifier({
    fetchKeys: async () => (await identity.client.getJwks({})).keys,
    issuer: "meshwork-identity",
    audience: "meshwork",
  });
  return { identity: identity.client, health: health.client, verifier, stop };
}

const failure = (work: Promise<unknown>): Promise<unknown> =>
  work.then(
    () => assert.fail("expected an error"),
    (caught: unknown) => caught,
  );

const userCount = async (db: Knex): Promise<number> => (await db("users").count({ n: "*" }))[0]!.n as number;

const ada = { email: "Ada@Example.com", password: "correct horse battery", displayName: "Ada Lovelace" };

describe("identity server on PostgreSQL", () => {
  test("sign up, sign in, and the token verifies with the keys GetJwks serves, through the platform verifier", async (t) => {
    const database = await freshDatabase(t);
    if (!database) return;
    const service = await start(t, database.url);
    assert.equal((await service.health.check({ service: "shop.identity.v1.IdentityService" })).status, HealthCheckResponse_ServingStatus.SERVING);
    const { user } = await service.identity.signUp(ada);
    assert.equal(user?.email, "ada@example.com");
    const signedIn = await service.identity.signIn({ email: "ada@example.com", password: ada.password });
    assert.equal(signedIn.user?.id, user?.id);
    const expiresIn = Number(signedIn.expireTime!.seconds) * 1000 - Date.now();
    assert.ok(expiresIn > 890_000 && expiresIn <= 900_000, `the token lives 15 minutes (${expiresIn} ms left)`);

    const { keys } = await service.identity.getJwks({});
    assert.equal(keys.length, 1);
    assert.equal(decodeProtectedHeader(signedIn.accessToken).kid, keys[0]?.kid);
    const context = createTestCallContext({ headers: { authorization: `Bearer ${signedIn.accessToken}` } });
    assert.deepEqual(await service.verifier.authenticate(context), { userId: user?.id, email: "ada@example.com" });

    const row = await database.db("users").where({ email: "ada@example.com" }).first("password_hash");
    assert.match(row.password_hash as string, /^scrypt\$1024\$8\$1\$/);
  });

  test("a taken email is ALREADY_EXISTS; a wrong password and an unknown email get the same UNAUTHENTICATED answer", async (t) => {
    const database = await freshDatabase(t);
    if (!database) return;
    const service = await start(t, database.url);
    await service.identity.signUp(ada);
    const duplicate = await failure(service.identity.signUp({ ...ada, email: " ADA@example.com" }));
    assert.ok(isRpcError(duplicate, Code.ALREADY_EXISTS), String(duplicate));
    const wrongPassword = await failure(service.identity.signIn({ email: ada.email, password: "not the password" }));
    const unknownEmail = await failure(service.identity.signIn({ email: "nobody@example.com", password: "not the password" }));
    assert.ok(isRpcError(wrongPassword, Code.UNAUTHENTICATED), String(wrongPassword));
    assert.ok(isRpcError(unknownEmail, Code.UNAUTHENTICATED), String(unknownEmail));
    assert.equal(wrongPassword.message, unknownEmail.message);
    assert.equal(await userCount(database.db), 1);
  });

  test("malformed or out-of-range input: INVALID_ARGUMENT naming the field, and no row written", async (t) => {
    const database = await freshDatabase(t);
    if (!database) return;
    const service = await start(t, database.url);
    const attempts: [Promise<unknown>, string][] = [
      [service.identity.signUp({ ...ada, email: "" }), "email"],
      [service.identity.signUp({ ...ada, email: "ada@@example.com" }), "email"],
      [service.identity.signUp({ ...ada, email: `${"a".repeat(64)}@${"b".repeat(200)}.example.com` }), "email"],
      [service.identity.signUp({ ...ada, email: "ada lovelace@example.com" }), "email"],
      [service.identity.signUp({ ...ada, password: "1234567" }), "password"],
      [service.identity.signUp({ ...ada, password: "x".repeat(129) }), "password"],
      [service.identity.signUp({ ...ada, displayName: " \t " }), "display_name"],
      [service.identity.signUp({ ...ada, displayName: "n".repeat(81) }), "display_name"],
      [service.identity.signIn({ email: "", password: "whatever" }), "email"],
      [service.identity.signIn({ email: ada.email, password: "" }), "password"],
    ];
    for (const [attempt, field] of attempts) {
      const error = await failure(attempt);
      assert.ok(isRpcError(error, Code.INVALID_ARGUMENT), `expected INVALID_ARGUMENT for ${field}, got ${String(error)}`);
      assert.equal(error.field, field);
      assert.ok(error.message.startsWith(`${field}:`), error.message);
    }
    assert.equal(await userCount(database.db), 0);
  });

  test("10 concurrent sign-ups with one email create one account; the other nine are ALREADY_EXISTS", async (t) => {
    const database = await freshDatabase(t);
    if (!database) return;
    const service = await start(t, database.url);
    const outcomes = await Promise.allSettled(Array.from({ length: 10 }, (_, index) => service.identity.signUp({ ...ada, displayName: `Ada ${index}` })));
    assert.equal(outcomes.filter((outcome) => outcome.status === "fulfilled").length, 1);
    assert.equal(outcomes.filter((outcome) => outcome.status === "rejected" && isRpcError(outcome.reason, Code.ALREADY_EXISTS)).length, 9);
    assert.equal(await userCount(database.db), 1);
  });

  test("a restart on the same database keeps the key id, so tokens issued before still verify", async (t) => {
    const database = await freshDatabase(t);
    if (!database) return;
    const before = await start(t, database.url);
    await before.identity.signUp(ada);
    const { accessToken } = await before.identity.signIn(ada);
    const kid = decodeProtectedHeader(accessToken).kid;
    await before.stop();

    const after = await start(t, database.url);
    assert.deepEqual(
      (await after.identity.getJwks({})).keys.map((key) => key.kid),
      [kid],
    );
    assert.equal((await after.verifier.verify(accessToken)).email, "ada@example.com");
    assert.equal(decodeProtectedHeader((await after.identity.signIn(ada)).accessToken).kid, kid);
    assert.equal((await database.db("signing_keys").count({ n: "*" }))[0]!.n, 1);
  });

  test("two instances starting together on a migrated, keyless database end with one signing key and accept each other's tokens", async (t) => {
    const database = await freshDatabase(t);
    if (!database) return;
    // Migrated first, as a deploy step would: the platform's migrator itself
    // does not yet survive two processes creating its bookkeeping table at once.
    const migrator = await openDatabase({ url: database.url, migrations, migrationsTable: "identity_migrations", log: createSilentLogger() });
    await migrator.migrate();
    await migrator.close();
    const [first, second] = await Promise.all([start(t, database.url), start(t, database.url)]);
    await first.identity.signUp(ada);
    const fromFirst = await first.identity.signIn(ada);
    const fromSecond = await second.identity.signIn(ada);
    assert.equal(decodeProtectedHeader(fromFirst.accessToken).kid, decodeProtectedHeader(fromSecond.accessToken).kid);
    assert.equal((await second.verifier.verify(fromFirst.accessToken)).userId, fromFirst.user?.id);
    assert.equal((await first.verifier.verify(fromSecond.accessToken)).userId, fromFirst.user?.id);
    assert.equal((await database.db("signing_keys").count({ n: "*" }))[0]!.n, 1);
  });

  test("a signing key from IDENTITY_SIGNING_KEY signs the tokens and is the key GetJwks publishes", async (t) => {
    const database = await freshDatabase(t);
    if (!database) return;
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const jwk = privateKey.export({ format: "jwk" });
    const service = await start(t, database.url, { IDENTITY_SIGNING_KEY: JSON.stringify({ ...jwk, kid: "ops-key-1" }) });
    const { keys } = await service.identity.getJwks({});
    assert.deepEqual(
      keys.map(({ kid, kty, crv, x, y, alg, use }) => ({ kid, kty, crv, x, y, alg, use })),
      [{ kid: "ops-key-1", kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, alg: "ES256", use: "sig" }],
    );
    await service.identity.signUp(ada);
    const { accessToken } = await service.identity.signIn(ada);
    assert.equal(decodeProtectedHeader(accessToken).kid, "ops-key-1");
    assert.equal((await service.verifier.verify(accessToken)).email, "ada@example.com");
    assert.equal((await database.db("signing_keys").count({ n: "*" }))[0]!.n, 0, "a configured key is not copied into the database");
  });

  test("at trace level, no log line carries a password, a token or an email", async (t) => {
    const database = await freshDatabase(t);
    if (!database) return;
    const lines: string[] = [];
    const log = createLogger({ service: "identity", level: "trace", destination: { write: (line: string) => void lines.push(line) } });
    const service = await start(t, database.url, {}, log);
    await service.identity.signUp(ada);
    const { accessToken } = await service.identity.signIn(ada);
    await failure(service.identity.signIn({ email: ada.email, password: "a wrong password" }));
    await failure(service.identity.signIn({ email: "nobody@example.com", password: "a wrong password" }));
    await failure(service.identity.signUp(ada));
    await service.stop();
    const output = lines.join("");
    assert.match(output, /account created/, "the capture works");
    for (const secret of [ada.password, "a wrong password", accessToken, accessToken.split(".")[2]!, "ada@example.com", "nobody@example.com"]) {
      assert.ok(!output.includes(secret), `a log line contains ${secret.slice(0, 12)}...`);
    }
  });
});

describe("identity process", () => {
  test("an invalid setting stops start-up with the variable named", async () => {
    await assert.rejects(startIdentity({ IDENTITY_SCRYPT_N: "1000", IDENTITY_DATA_DIR: "memory://" }), (error: unknown) => {
      return error instanceof ConfigError && /IDENTITY_SCRYPT_N \(scryptN\): expected a power of two above 1; got "1000"/.test(error.message);
    });
  });

  test("as its own process: exits 1 naming a bad key; serves on PostgreSQL; on SIGTERM drains and exits 0", async (t) => {
    const bad = spawn(process.execPath, ["--import", "tsx", mainFile], {
      env: { ...process.env, IDENTITY_SIGNING_KEY: "not a key", IDENTITY_DATA_DIR: "memory://" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    bad.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const [badCode] = (await once(bad, "exit")) as [number];
    assert.equal(badCode, 1);
    assert.match(stderr, /identity failed to start: .*IDENTITY_SIGNING_KEY \(signingKey\): expected a P-256/s);

    const url = await createTestDatabase(t, "identity_proc");
    if (url === undefined) return;
    const service = await startServiceProcess(t, { mainFile, name: "identity", env: { ...TEST_ENV, IDENTITY_DATABASE_URL: url, IDENTITY_LOG_LEVEL: "info" } });
    const { client: health, close } = createClient(Health, { target: `127.0.0.1:${service.port}` });
    t.onTestFinished(close);
    assert.equal((await health.check({ service: "" })).status, HealthCheckResponse_ServingStatus.SERVING);
    assert.equal(await service.terminate(), 0);
    assert.ok(service.lines.some((entry) => entry.msg === "signing key ready" && entry.source === "generated"));
    assert.ok(service.lines.some((entry) => entry.level === "warn" && String(entry.msg).startsWith("IDENTITY_SCRYPT_N is below 16384")));
    const steps = service.shutdownSteps();
    // The metrics endpoint and the span exporter go last: the shutdown itself is still observed.
    assert.deepEqual(steps, ["health NOT_SERVING", "deregister", "drain gRPC calls", "stop re-reading signing keys", "stop discovery", "close database", "stop metrics endpoint", "flush traces"]);
  });
});
