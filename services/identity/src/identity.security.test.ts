/**
 * Issue 13, point 8 (identity's part): an email is one account whatever
 * Unicode form it was typed in, and invisible characters that make two
 * addresses or names look alike (or reorder how a name is shown) are refused
 * with INVALID_ARGUMENT naming the field.
 */
import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { create } from "@bufbuild/protobuf";
import { SignInRequestSchema, SignUpRequestSchema } from "@meshwork/contracts/shop/identity/v1/identity";
import { Code, isRpcError } from "@meshwork/platform";
import { createTestCallContext, fieldRefusal } from "@meshwork/testing";
import { createMemoryIdentityStore } from "./adapters/identity-store.memory.js";
import { checkDisplayName, checkEmail } from "./identity.js";
import { createPasswordHasher } from "./password-hash.js";
import { createIdentityHandlers } from "./service.js";
import { generateSigningKey, importSigningKey } from "./signing-keys.js";
import { createTokenIssuer } from "./tokens.js";

/** "josé@example.com" with é as one code point (NFC) and as e + combining acute (NFD). */
const COMPOSED = "jos\u00e9@example.com";
const DECOMPOSED = "jose\u0301@example.com";

/** One example of each class the issue names, with the code point the refusal must name. */
const REFUSED: readonly [string, string][] = [
  ["zero-width space", "\u200b"],
  ["zero-width non-joiner", "\u200c"],
  ["zero-width joiner", "\u200d"],
  ["left-to-right mark", "\u200e"],
  ["right-to-left mark", "\u200f"],
  ["left-to-right embedding", "\u202a"],
  ["right-to-left override", "\u202e"],
  ["left-to-right isolate", "\u2066"],
  ["pop directional isolate", "\u2069"],
  ["byte-order mark / zero-width no-break space", "\ufeff"],
  ["soft hyphen (Cf)", "\u00ad"],
  ["line separator", "\u2028"],
  ["C0 control (bell)", "\u0007"],
  ["C1 control", "\u0085"],
];

const codePoint = (character: string): string => `U+${character.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;

async function identityHandlers() {
  const store = createMemoryIdentityStore();
  const generated = await generateSigningKey();
  const key = await importSigningKey(generated.kid, generated.privateJwk);
  const passwords = await createPasswordHasher({ N: 1024, r: 8, p: 1, keyLength: 64 });
  const tokens = createTokenIssuer({ key, issuer: "meshwork-identity", audience: "meshwork", ttlSeconds: 900 });
  const handlers = createIdentityHandlers({ store, passwords, tokens, jwks: [key.publicJwk] });
  const context = createTestCallContext();
  return {
    store,
    signUp: (email: string, displayName = "José") => handlers.signUp(create(SignUpRequestSchema, { email, password: "correct horse battery", displayName }), context),
    signIn: (email: string) => handlers.signIn(create(SignInRequestSchema, { email, password: "correct horse battery" }), context),
  };
}

const failure = (work: Promise<unknown>): Promise<unknown> =>
  work.then(
    () => assert.fail("expected a refusal"),
    (caught: unknown) => caught,
  );

describe("emails and display names (security)", () => {
  test("composed and decomposed forms of one email normalise to the same NFC, lower-case address", () => {
    assert.notEqual(COMPOSED, DECOMPOSED);
    assert.equal(checkEmail(DECOMPOSED), COMPOSED);
    assert.equal(checkEmail(` JOSE\u0301@Example.com `), COMPOSED);
    assert.equal(checkDisplayName("Jose\u0301"), "Jos\u00e9");
  });

  test("the decomposed form of a registered email signs in to the same account and cannot register a second one", async () => {
    const identity = await identityHandlers();
    const { user } = await identity.signUp(COMPOSED);
    const signedIn = await identity.signIn(DECOMPOSED);
    assert.equal(signedIn.user?.id, user?.id);
    const duplicate = await failure(identity.signUp(DECOMPOSED));
    assert.ok(isRpcError(duplicate, Code.ALREADY_EXISTS), String(duplicate));
  });

  for (const [name, character] of REFUSED) {
    test(`an email or display name containing a ${name} (${codePoint(character)}) is INVALID_ARGUMENT naming the field`, async () => {
      for (const email of [`ada${character}@example.com`, `${character}ada@example.com`, `ada@example.com${character}`]) {
        const { field, problem } = fieldRefusal(() => checkEmail(email));
        assert.equal(field, "email", JSON.stringify(email));
        assert.match(problem, /control|invisible/);
      }
      const { field, problem } = fieldRefusal(() => checkDisplayName(`Ada${character}Lovelace`));
      assert.equal(field, "display_name");
      assert.match(problem, /control|invisible/);

      const identity = await identityHandlers();
      const byEmail = await failure(identity.signUp(`ada${character}@example.com`));
      assert.ok(isRpcError(byEmail, Code.INVALID_ARGUMENT) && byEmail.field === "email", String(byEmail));
      const byName = await failure(identity.signUp("ada@example.com", `Ada${character}`));
      assert.ok(isRpcError(byName, Code.INVALID_ARGUMENT) && byName.field === "display_name", String(byName));
      const bySignIn = await failure(identity.signIn(`ada${character}@example.com`));
      assert.ok(isRpcError(bySignIn, Code.INVALID_ARGUMENT) && bySignIn.field === "email", String(bySignIn));
      assert.equal(await identity.store.findUserByEmail("ada@example.com"), undefined, "nothing was written");
    });
  }

  test("a format character is named by code point, and a leading U+FEFF is refused rather than trimmed away", () => {
    assert.match(fieldRefusal(() => checkEmail("\ufeffada@example.com")).problem, /U\+FEFF/);
    assert.match(fieldRefusal(() => checkDisplayName("\u202eAda")).problem, /U\+202E/);
  });
});
