/**
 * `npm run db:setup -- --passwords` on the real PostgreSQL (127.0.0.1:5432):
 * the role gets the password the printed URL carries, checked against the
 * server's own SCRAM verifier (the local server trusts connections, so a
 * login would prove nothing). Roles and databases of this test's own, dropped after.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import { describe, expect, test } from "vitest";
import pg from "pg";
import { adminUrl } from "@meshwork/testing";
import { dbSetup } from "./db-setup.js";
import { newPassword } from "./lib/secrets.js";
import { dropServiceDatabase, ensureServiceDatabase } from "./lib/service-databases.js";

async function storedPassword(role: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    const { rows } = await client.query<{ rolpassword: string | null }>("select rolpassword from pg_authid where rolname = $1", [role]);
    return rows[0]!.rolpassword;
  } finally {
    await client.end();
  }
}

/** Whether `password` is the one behind a SCRAM-SHA-256 verifier (RFC 5802: StoredKey = H(HMAC(SaltedPassword, "Client Key"))). */
function scramMatches(verifier: string, password: string): boolean {
  const match = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):/.exec(verifier);
  if (!match) return false;
  const salted = pbkdf2Sync(password, Buffer.from(match[2]!, "base64"), Number(match[1]), 32, "sha256");
  const storedKey = createHash("sha256").update(createHmac("sha256", salted).update("Client Key").digest()).digest("base64");
  return storedKey === match[3];
}

describe("db:setup with passwords, for servers that do not trust local connections", () => {
  test("the role is given the password its URL carries; without one it has none, as the local trust server wants", async (t) => {
    const suffix = `_t${randomBytes(3).toString("hex")}`;
    const password = newPassword();
    const withPassword = await ensureServiceDatabase(adminUrl(), "orders", suffix, { password });
    const without = await ensureServiceDatabase(adminUrl(), "catalog", suffix);
    t.onTestFinished(async () => {
      await dropServiceDatabase(adminUrl(), withPassword);
      await dropServiceDatabase(adminUrl(), without);
    });
    expect(decodeURIComponent(new URL(withPassword.url).password)).toBe(password);
    const verifier = await storedPassword(withPassword.role);
    expect(scramMatches(verifier!, password)).toBe(true);
    expect(scramMatches(verifier!, `${password}x`)).toBe(false);
    expect(await storedPassword(without.role)).toBeNull();
    expect(new URL(without.url).password).toBe("");

    // Run again with another password: the role now has the new one only.
    const again = await ensureServiceDatabase(adminUrl(), "orders", suffix, { password: `${password}2` });
    expect(scramMatches((await storedPassword(again.role))!, `${password}2`)).toBe(true);
  });

  test("bad arguments are refused, naming what is wrong", async () => {
    await expect(dbSetup(["--env-file", "/tmp/never-written"], "postgres://nobody@127.0.0.1:1/none")).rejects.toThrow(/--env-file is for --passwords/);
    await expect(dbSetup(["--pasword"], "postgres://nobody@127.0.0.1:1/none")).rejects.toThrow(/--pasword/);
  });
});
