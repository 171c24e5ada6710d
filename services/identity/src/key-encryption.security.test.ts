/**
 * Issue 13, point 2: the envelope encryption of signing keys on its own.
 * Tampering, another kid or another KEK never yields a key; the generated
 * KEK file is one key however many instances race to create it.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, test } from "vitest";
import { createKeyEncryption, generatedKekFile, KeyDecryptionError, loadOrCreateKekFile, parseKek } from "./key-encryption.js";
import { generateSigningKey } from "./signing-keys.js";

const kek = (fill: number): Buffer => Buffer.alloc(32, fill);

describe("key encryption (security)", () => {
  test("a sealed key opens only with its KEK and its kid, and the ciphertext does not contain the private scalar", async () => {
    const { kid, privateJwk } = await generateSigningKey();
    const encryption = createKeyEncryption(kek(1));
    const sealed = encryption.seal(kid, privateJwk);
    assert.ok(!sealed.ciphertext.includes(privateJwk.d));
    assert.deepEqual(encryption.open(kid, sealed), { kty: "EC", crv: privateJwk.crv, x: privateJwk.x, y: privateJwk.y, d: privateJwk.d });
    assert.notEqual(encryption.seal(kid, privateJwk).ciphertext, sealed.ciphertext, "a fresh IV every time");

    assert.throws(
      () => createKeyEncryption(kek(2)).open(kid, sealed),
      (error: unknown) => error instanceof KeyDecryptionError && /IDENTITY_KEY_ENCRYPTION_KEY/.test(error.message),
    );
    assert.throws(() => encryption.open("other-kid", sealed), KeyDecryptionError);
    const [format, iv, body, tag] = sealed.ciphertext.split(".");
    const flipped = Buffer.from(body!, "base64url");
    flipped[0]! ^= 1;
    assert.throws(() => encryption.open(kid, { ...sealed, ciphertext: [format, iv, flipped.toString("base64url"), tag].join(".") }), /does not decrypt/);
  });

  test("the KEK setting takes exactly 32 bytes of base64url", () => {
    assert.equal(parseKek(kek(9).toString("base64url"))?.length, 32);
    assert.equal(parseKek(`${kek(9).toString("base64")}\n`)?.length, 32, "padding and a trailing newline are tolerated");
    for (const bad of ["", "short", Buffer.alloc(31).toString("base64url"), Buffer.alloc(33).toString("base64url"), "!!!!"]) assert.equal(parseKek(bad), undefined, bad);
  });

  test("instances racing to generate the KEK file all get the one key that was written first", async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), "kek-race-"));
    t.onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, "identity.kek");
    const keys = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateKekFile(file)));
    assert.equal(new Set(keys.map((key) => key.toString("hex"))).size, 1);
    writeFileSync(path.join(dir, "broken.kek"), "not a key");
    await assert.rejects(loadOrCreateKekFile(path.join(dir, "broken.kek")), /does not hold 32 bytes/);
  });

  test("an unwritable place for the generated KEK stops start-up saying which settings to use instead", async () => {
    await assert.rejects(loadOrCreateKekFile("/dev/null/identity.kek"), /IDENTITY_KEY_ENCRYPTION_KEY_FILE .*IDENTITY_GENERATED_KEK_PATH/);
  });

  test("the generated KEK sits beside the data, never in the database: per data dir, or under .data/ with a database URL", () => {
    assert.equal(generatedKekFile({ generatedKekPath: "", databaseUrl: undefined, dataDir: ".data/pglite/" }), ".data/pglite-identity.kek");
    assert.equal(generatedKekFile({ generatedKekPath: "", databaseUrl: "postgres://x@h/db", dataDir: ".data/pglite" }), path.join(".data", "identity.kek"));
    assert.equal(generatedKekFile({ generatedKekPath: "", databaseUrl: undefined, dataDir: "memory://" }), undefined);
    assert.equal(generatedKekFile({ generatedKekPath: "/run/kek", databaseUrl: undefined, dataDir: ".data/pglite" }), "/run/kek");
  });
});
