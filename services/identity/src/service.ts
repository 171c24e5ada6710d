import { randomUUID } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { IdentityService, UserSchema } from "@meshwork/contracts/shop/identity/v1/identity";
import { alreadyExists, Code, errorMapper, RpcError, unauthenticated, type ServiceHandlers } from "@meshwork/platform";
import { HashCapacityError } from "./hash-limiter.js";
import { checkSignIn, checkSignUp, EmailTakenError, InvalidCredentialsError, type UserRecord } from "./identity.js";
import type { PasswordHasher } from "./password-hash.js";
import type { IdentityStore } from "./ports.js";
import { clientAddress, throttleKeyOfAddress, type SignInThrottle, type ThrottleRefusal } from "./sign-in-throttle.js";
import type { PublicSigningJwk } from "./signing-keys.js";
import type { TokenIssuer } from "./tokens.js";

export interface IdentityDeps {
  readonly store: IdentityStore;
  readonly passwords: PasswordHasher;
  readonly tokens: TokenIssuer;
  /** The public keys GetJwks publishes, signing key first; a function when they change (the key ring). */
  readonly jwks: readonly PublicSigningJwk[] | (() => readonly PublicSigningJwk[]);
  readonly newUserId?: () => string;
  /** Back-off after failed sign-ins, per account and per client address; none in tests that do not exercise it. */
  readonly throttle?: SignInThrottle;
}

/** Trailing metadata a refused client reads to know when to come back (seconds, as HTTP's Retry-After). */
export const RETRY_AFTER_TRAILER = "retry-after";

function resourceExhausted(message: string, retryAfterSeconds: number): RpcError {
  const error = new RpcError(Code.RESOURCE_EXHAUSTED, message);
  error.metadata.set(RETRY_AFTER_TRAILER, String(retryAfterSeconds));
  return error;
}

/** RESOURCE_EXHAUSTED with the wait; the same words for a known and an unknown email, so it reveals no account. */
function throttled(refusal: ThrottleRefusal): RpcError {
  const seconds = Math.max(1, Math.ceil(refusal.retryAfterMs / 1000));
  const from = refusal.scope === "account" ? "for this email" : "from this address";
  return resourceExhausted(`too many failed sign-ins ${from}; retry after ${seconds} s`, seconds);
}

const userMessage = (user: UserRecord): MessageInitShape<typeof UserSchema> => ({
  id: user.id,
  email: user.email,
  displayName: user.displayName,
  createTime: timestampFromDate(user.createdAt),
});

/** Maps the domain's refusals to status codes; anything else stays unknown (INTERNAL, logged, never sent). */
function toRpcError(error: unknown): unknown {
  if (error instanceof EmailTakenError) return alreadyExists(error.message);
  if (error instanceof InvalidCredentialsError) return unauthenticated(error.message);
  if (error instanceof HashCapacityError) return resourceExhausted(error.message, 1);
  return error;
}

const mapped = errorMapper(toRpcError);

/**
 * Sign-up, sign-in and the public keys. Passwords and tokens are never
 * logged: log lines carry the user id only.
 */
export function createIdentityHandlers({ store, passwords, tokens, jwks, newUserId = randomUUID, throttle }: IdentityDeps): ServiceHandlers<typeof IdentityService> {
  return {
    signUp: (request, context) =>
      mapped(async () => {
        // Everything is checked before the (expensive) hash and the write.
        const input = checkSignUp(request);
        const user = await store.createUser({
          id: newUserId(),
          email: input.email,
          displayName: input.displayName,
          passwordHash: await passwords.hash(input.password),
        });
        context.log.info({ userId: user.id }, "account created");
        return { user: userMessage(user) };
      }),

    signIn: (request, context) =>
      mapped(async () => {
        const { email, password } = checkSignIn(request);
        const address = throttleKeyOfAddress(clientAddress(context.metadata, context.peer));
        // Decided before the lookup and the hash: a throttled attempt costs no scrypt.
        const refusal = throttle?.check(email, address);
        if (refusal) {
          context.log.info({ scope: refusal.scope, retryAfterMs: refusal.retryAfterMs }, "sign-in throttled");
          throw throttled(refusal);
        }
        const found = await store.findUserByEmail(email);
        if (!found) {
          // One scrypt, as for a wrong password: the time taken does not tell whether the account exists.
          await passwords.verifyNothing(password);
          throttle?.recordFailure(email, address);
          context.log.debug("sign-in refused");
          throw new InvalidCredentialsError();
        }
        if (!(await passwords.verify(password, found.passwordHash))) {
          throttle?.recordFailure(email, address);
          context.log.debug({ userId: found.id }, "sign-in refused");
          throw new InvalidCredentialsError();
        }
        throttle?.recordSuccess(email);
        if (passwords.needsRehash(found.passwordHash)) {
          // The only moment the password is known: move the hash to the current parameters.
          try {
            await store.updatePasswordHash(found.id, await passwords.hash(password));
            context.log.info({ userId: found.id }, "password hash upgraded to the current scrypt parameters");
          } catch (error) {
            context.log.warn({ userId: found.id, err: error }, "password hash upgrade failed; the old hash stays valid");
          }
        }
        const issued = await tokens.issue(found);
        context.log.debug({ userId: found.id }, "signed in");
        return { accessToken: issued.token, expireTime: timestampFromDate(issued.expiresAt), user: userMessage(found) };
      }),

    getJwks: async () => ({ keys: (typeof jwks === "function" ? jwks() : jwks).map((key) => ({ ...key })) }),
  };
}
