import { randomUUID } from "node:crypto";
import { ACCESS_TOKEN_TYPE } from "@meshwork/platform";
import { SignJWT } from "jose";
import type { UserRecord } from "./identity.js";
import { SIGNING_ALGORITHM, type SigningKey } from "./signing-keys.js";

export interface IssuedToken {
  readonly token: string;
  readonly expiresAt: Date;
}

export interface TokenIssuer {
  issue(user: UserRecord): Promise<IssuedToken>;
}

export interface TokenIssuerOptions {
  /** The key to sign with, or where to ask for the current one at each issue (the key ring, which rotates). */
  readonly key: SigningKey | (() => SigningKey);
  readonly issuer: string;
  readonly audience: string;
  readonly ttlSeconds: number;
  readonly clock?: () => Date;
}

/**
 * Short-lived ES256 access tokens: header kid, alg and typ "at+jwt" (RFC 9068,
 * which verifiers require, so no other JWT signed by this key passes for an
 * access token); claims sub (user id),
 * email, iss, aud, iat, exp and a unique jti (so a future deny-list can name
 * one token). Verifiers need only the public key published by GetJwks.
 */
export function createTokenIssuer({ key, issuer, audience, ttlSeconds, clock = () => new Date() }: TokenIssuerOptions): TokenIssuer {
  return {
    async issue(user) {
      const signing = typeof key === "function" ? key() : key;
      const issuedAt = Math.floor(clock().getTime() / 1000);
      const expiresAt = issuedAt + ttlSeconds;
      const token = await new SignJWT({ email: user.email })
        .setProtectedHeader({ alg: SIGNING_ALGORITHM, kid: signing.kid, typ: ACCESS_TOKEN_TYPE })
        .setSubject(user.id)
        .setIssuer(issuer)
        .setAudience(audience)
        .setIssuedAt(issuedAt)
        .setExpirationTime(expiresAt)
        .setJti(randomUUID())
        .sign(signing.privateKey);
      return { token, expiresAt: new Date(expiresAt * 1000) };
    },
  };
}
