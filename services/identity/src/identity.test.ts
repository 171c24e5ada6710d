import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { fieldRefusal } from "@meshwork/testing";
import { checkDisplayName, checkEmail, checkNewPassword, checkOfferedPassword, checkSignIn, checkSignUp } from "./identity.js";

const refusal = fieldRefusal;

describe("identity request rules", () => {
  test("emails are trimmed and lower-cased", () => {
    assert.equal(checkEmail("  Ada.Lovelace@Example.COM \n"), "ada.lovelace@example.com");
    assert.equal(checkEmail("a+tag@x.io"), "a+tag@x.io");
  });

  test("an email needs exactly one @ with text on both sides, no spaces, at most 254 characters", () => {
    for (const bad of ["", "   ", "ada", "ada@", "@example.com", "a@b@c", "ada lovelace@example.com", "ada@exa mple.com", "ada@.com", "ada@example..com", "ada@example.com.", "a\u0000@b.c"]) {
      assert.equal(refusal(() => checkEmail(bad)).field, "email", JSON.stringify(bad));
    }
    const local = "a".repeat(64);
    const at254 = `${local}@${"d".repeat(254 - 65 - 4)}.com`;
    assert.equal(at254.length, 254);
    assert.equal(checkEmail(at254), at254);
    assert.match(refusal(() => checkEmail(`x${at254}`)).problem, /at most 254/);
    assert.match(refusal(() => checkEmail(`${"a".repeat(65)}@example.com`)).problem, /at most 64 characters before the @/);
  });

  test("a new password has 8 to 128 characters, counted as characters rather than UTF-16 units", () => {
    assert.equal(checkNewPassword("12345678"), "12345678");
    assert.equal(checkNewPassword("  spaces count  "), "  spaces count  ", "passwords are not trimmed");
    assert.equal(refusal(() => checkNewPassword("1234567")).field, "password");
    assert.equal(checkNewPassword("p".repeat(128)).length, 128);
    assert.equal(refusal(() => checkNewPassword("p".repeat(129))).field, "password");
    assert.equal(checkNewPassword("🔑".repeat(8)), "🔑".repeat(8), "eight emoji are eight characters (sixteen UTF-16 units)");
    assert.equal(refusal(() => checkNewPassword("🔑".repeat(4))).field, "password");
    assert.equal(checkNewPassword("🔑".repeat(128)), "🔑".repeat(128), "128 emoji (256 UTF-16 units) are still 128 characters");
    assert.equal(refusal(() => checkNewPassword("🔑".repeat(129))).field, "password");
    assert.equal(refusal(() => checkNewPassword("x".repeat(4_000_000))).field, "password");
  });

  test("passwords are compared in Unicode NFC, so composed and decomposed accents are the same password", () => {
    assert.equal(checkNewPassword("caf\u0065\u0301-au-lait"), checkNewPassword("caf\u00e9-au-lait"));
    assert.equal(checkOfferedPassword("caf\u0065\u0301-au-lait"), "caf\u00e9-au-lait");
  });

  test("a password offered at sign-in needs only to be present and at most 128 characters", () => {
    assert.equal(checkOfferedPassword("short"), "short", "a later, stricter minimum must not lock out old accounts");
    assert.equal(refusal(() => checkOfferedPassword("")).field, "password");
    assert.equal(refusal(() => checkOfferedPassword("p".repeat(129))).field, "password");
  });

  test("a display name has 1 to 80 characters after trimming and no control characters", () => {
    assert.equal(checkDisplayName("  Ada Lovelace "), "Ada Lovelace");
    assert.equal(checkDisplayName("n".repeat(80)), "n".repeat(80));
    for (const bad of ["", "    ", "n".repeat(81), "Ada\nLovelace", "bell\u0007"]) {
      assert.equal(refusal(() => checkDisplayName(bad)).field, "display_name", JSON.stringify(bad));
    }
  });

  test("sign-up names the first field that breaks a rule, in the order email, password, display_name", () => {
    assert.equal(refusal(() => checkSignUp({ email: "bad", password: "short", displayName: "" })).field, "email");
    assert.equal(refusal(() => checkSignUp({ email: "a@b.c", password: "short", displayName: "" })).field, "password");
    assert.equal(refusal(() => checkSignUp({ email: "a@b.c", password: "long enough", displayName: " " })).field, "display_name");
    assert.deepEqual(checkSignUp({ email: " A@B.C", password: "long enough", displayName: " Ada " }), {
      email: "a@b.c",
      password: "long enough",
      displayName: "Ada",
    });
    assert.deepEqual(checkSignIn({ email: "A@B.C ", password: "x" }), { email: "a@b.c", password: "x" });
  });
});
