import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { describe, test } from "vitest";
import { ConfigError } from "@meshwork/platform";
import { loadIdentityConfig } from "./config.js";

const configError = (env: Record<string, string>): string => {
  try {
    loadIdentityConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error("expected a ConfigError");
};

describe("identity configuration", () => {
  test("defaults: port 50051, scrypt N=16384 r=8 p=1 keylen 64, 15-minute tokens from meshwork-identity for meshwork, generated key", () => {
    const config = loadIdentityConfig({});
    assert.equal(config.port, 50051);
    assert.deepEqual([config.scryptN, config.scryptR, config.scryptP, config.scryptKeyLength], [16384, 8, 1, 64]);
    assert.equal(config.tokenTtlSeconds, 900);
    assert.equal(config.tokenIssuer, "meshwork-identity");
    assert.equal(config.tokenAudience, "meshwork");
    assert.equal(config.signingKey, undefined);
  });

  test("IDENTITY_SIGNING_KEY takes a P-256 key as PKCS8 PEM or as JWK JSON (keeping its kid)", () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const jwk = privateKey.export({ format: "jwk" });
    const fromPem = loadIdentityConfig({ IDENTITY_SIGNING_KEY: privateKey.export({ format: "pem", type: "pkcs8" }).toString() }).signingKey;
    assert.deepEqual(fromPem, { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, d: jwk.d });
    const fromJwk = loadIdentityConfig({ IDENTITY_SIGNING_KEY: JSON.stringify({ ...jwk, kid: "ops-1" }) }).signingKey;
    assert.deepEqual(fromJwk, { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, d: jwk.d, kid: "ops-1" });
  });

  test("a signing key that is not a P-256 private key stops start-up naming the variable, without printing the key", () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "pem", type: "pkcs8" }).toString();
    const p384 = generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey.export({ format: "pem", type: "pkcs8" }).toString();
    const publicOnly = JSON.stringify({ ...generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ format: "jwk" }) });
    for (const bad of [rsa, p384, publicOnly, "not a key", "{ broken json"]) {
      const message = configError({ IDENTITY_SIGNING_KEY: bad });
      assert.match(message, /IDENTITY_SIGNING_KEY \(signingKey\): expected a P-256 \(ES256\) private key as PKCS8 PEM or JWK JSON; got \(hidden\)/);
      if (bad.length > 60) assert.ok(!message.includes(bad.slice(30, 60)), "the value is not echoed");
    }
  });

  test("scrypt parameters are checked: N a power of two, memory bounded, key length 32 to 128", () => {
    assert.match(configError({ IDENTITY_SCRYPT_N: "1000" }), /IDENTITY_SCRYPT_N \(scryptN\): expected a power of two above 1; got "1000"/);
    assert.match(configError({ IDENTITY_SCRYPT_N: "1" }), /IDENTITY_SCRYPT_N/);
    assert.match(configError({ IDENTITY_SCRYPT_N: "1048576", IDENTITY_SCRYPT_R: "8" }), /128·N·r must stay within 256 MiB/);
    assert.match(configError({ IDENTITY_SCRYPT_KEYLEN: "16" }), /IDENTITY_SCRYPT_KEYLEN \(scryptKeyLength\): expected at least 32/);
    assert.match(configError({ IDENTITY_TOKEN_TTL_SECONDS: "0" }), /IDENTITY_TOKEN_TTL_SECONDS/);
    assert.equal(loadIdentityConfig({ IDENTITY_SCRYPT_N: "1024" }).scryptN, 1024);
  });
});
