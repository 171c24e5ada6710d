import { importJWK, jwtVerify, type CryptoKey, type JWTPayload } from "jose";
import type { CallContext } from "../call-context.js";
import { Code, RpcError, unauthenticated } from "../rpc-errors.js";

/**
 * A public key as identity publishes it (shop.identity.v1.JsonWebKey, or any
 * RFC 7517 object). Empty strings count as absent, because that is how proto3
 * sends a field that was never set.
 */
export interface PublicJwk {
  readonly kid?: string;
  readonly kty: string;
  readonly crv?: string;
  readonly x?: string;
  readonly y?: string;
  readonly alg?: string;
  readonly use?: string;
}

/** Who a valid access token speaks for. */
export interface AuthenticatedUser {
  /** The token's `sub`: identity's user id. */
  readonly userId: string;
  readonly email: string;
}

export interface TokenVerifierOptions {
  /** Fetches the current public keys, e.g. `async () => (await identity.getJwks({})).keys`. */
  readonly fetchKeys: () => Promise<readonly PublicJwk[]>;
  /** The `iss` every token must carry ("meshwork-identity"). */
  readonly issuer: string;
  /** The `aud` every token must carry ("meshwork"). */
  readonly audience: string;
  /**
   * Least time between two key fetches (default 10 s). A token with an unknown
   * kid triggers a fetch, so without this limit a client sending made-up kids
   * could make every call hit identity.
   */
  readonly refreshMinIntervalMs?: number;
  /**
   * How old the cached key set may get before the next call fetches it again
   * (default 60 s). This is what retires a key: once identity stops
   * publishing it, every verifier refuses its tokens at most this long (plus
   * one fetch) later, instead of trusting it for as long as it stays cached.
   */
  readonly refreshIntervalMs?: number;
  /**
   * Longest a key set may go without a successful fetch before it is dropped
   * and calls answer UNAVAILABLE (default 15 min). While identity cannot be
   * reached the last known keys keep working (a blip must not sign everybody
   * out), but not forever: a key retired during an outage stops verifying
   * at most this long after the last good fetch.
   */
  readonly maxKeySetAgeMs?: number;
  /**
   * Longest lifetime (exp - iat) a token may claim, in seconds (default 3600).
   * Identity issues 15-minute tokens; one living for days was not minted by
   * its configuration, and would outlive any rotation, so it is refused.
   */
  readonly maxTokenLifetimeSec?: number;
  /** Clock skew allowed on exp/iat/nbf, in seconds (default 5). */
  readonly clockToleranceSec?: number;
  /** Current time in epoch ms (tests move it; default Date.now). */
  readonly now?: () => number;
}

export interface TokenVerifier {
  /** Checks a bare token; throws RpcError UNAUTHENTICATED saying why it is refused. */
  verify(token: string): Promise<AuthenticatedUser>;
  /** Reads `authorization: Bearer <token>` from the call's metadata and verifies it. */
  authenticate(context: CallContext): Promise<AuthenticatedUser>;
}

export const AUTHORIZATION_HEADER = "authorization";

const DEFAULT_REFRESH_MIN_INTERVAL_MS = 10_000;
/**
 * While no key set is held (identity was not reachable yet, or the set aged
 * out), every call is refused UNAVAILABLE whatever its kid, so the
 * unknown-kid limit protects nothing and only stretches the outage: a
 * service that started a moment before identity would refuse every token
 * for 10 s. Fetches are retried from this delay instead, doubling per
 * failure up to `refreshMinIntervalMs`.
 */
const FIRST_RETRY_WITHOUT_KEYS_MS = 250;
export const DEFAULT_JWKS_REFRESH_INTERVAL_MS = 60_000;
const DEFAULT_MAX_KEY_SET_AGE_MS = 15 * 60_000;
export const DEFAULT_MAX_TOKEN_LIFETIME_SEC = 3600;
const DEFAULT_CLOCK_TOLERANCE_SEC = 5;
/**
 * The JOSE `typ` of an access token (RFC 9068). Checking it means a JWT of
 * another kind signed by the same key (an ID token, a future refresh or
 * invitation token) cannot be replayed as an access token. Tokens identity
 * issued before it set this header carry "JWT" and are refused: they live at
 * most 15 minutes, so the cost of the switch is one sign-in again, once.
 */
export const ACCESS_TOKEN_TYPE = "at+jwt";
/**
 * Tokens whose verification is remembered (see createTokenVerifier). A
 * shopper sends one token for many calls; this many covers the distinct
 * tokens of several minutes of busy traffic in a few hundred KB.
 */
const VERIFIED_TOKENS_KEPT = 1024;
/** Our tokens are a few hundred bytes; anything this long is not one of them and is not parsed. */
const MAX_TOKEN_LENGTH = 8 * 1024;
const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;
const ALGORITHM = "ES256";

/** Extracts the token from an `authorization` metadata value; throws UNAUTHENTICATED when absent or malformed. */
export function bearerToken(context: Pick<CallContext, "metadata">): string {
  const values = context.metadata.get(AUTHORIZATION_HEADER);
  if (values.length === 0) throw unauthenticated("missing authorization header: send `authorization: Bearer <token>`");
  if (values.length > 1) throw unauthenticated("malformed authorization header: sent more than once");
  const value = values[0];
  const match = typeof value === "string" ? BEARER.exec(value) : null;
  if (!match?.[1]) throw unauthenticated("malformed authorization header: expected `Bearer <token>`");
  return match[1];
}

/** A JWK stripped to the members a P-256 public key needs (drops $typeName and any private part). */
function usableKey(jwk: PublicJwk): { kid: string; jwk: { kty: string; crv: string; x: string; y: string } } | undefined {
  const present = (value: string | undefined): string | undefined => (value === undefined || value === "" ? undefined : value);
  const kid = present(jwk.kid);
  const alg = present(jwk.alg);
  const use = present(jwk.use);
  const crv = present(jwk.crv);
  const x = present(jwk.x);
  const y = present(jwk.y);
  if (!kid || jwk.kty !== "EC" || crv !== "P-256" || !x || !y) return undefined;
  if ((alg !== undefined && alg !== ALGORITHM) || (use !== undefined && use !== "sig")) return undefined;
  return { kid, jwk: { kty: "EC", crv, x, y } };
}

async function importKeys(jwks: readonly PublicJwk[]): Promise<Map<string, CryptoKey>> {
  const keys = new Map<string, CryptoKey>();
  for (const candidate of jwks) {
    const usable = usableKey(candidate);
    if (!usable || keys.has(usable.kid)) continue;
    try {
      keys.set(usable.kid, (await importJWK(usable.jwk, ALGORITHM)) as CryptoKey);
    } catch {
      // A key that is not a valid P-256 point verifies nothing; the others still do.
    }
  }
  return keys;
}

/** Turns jose's failures into answers a client can act on, without echoing the token. */
function refusal(error: unknown): unknown {
  if (error instanceof RpcError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  switch (code) {
    case "ERR_JWT_EXPIRED":
      return unauthenticated("token expired: sign in again");
    case "ERR_JWT_CLAIM_VALIDATION_FAILED": {
      const { claim, reason } = error as { claim?: unknown; reason?: unknown };
      // jose says "missing" for an absent required claim; without this an absent iat read as "issued in the future".
      if (reason === "missing") return unauthenticated(`invalid token: claim ${typeof claim === "string" ? claim : "?"} is missing or invalid`);
      if (claim === "iss") return unauthenticated("invalid token: wrong issuer");
      if (claim === "aud") return unauthenticated("invalid token: wrong audience");
      if (claim === "nbf") return unauthenticated("invalid token: not valid yet");
      if (claim === "iat") return unauthenticated("invalid token: issued in the future");
      if (claim === "typ") return unauthenticated(`invalid token: wrong type (typ header), expected ${ACCESS_TOKEN_TYPE}`);
      return unauthenticated(`invalid token: claim ${typeof claim === "string" ? claim : "?"} is missing or invalid`);
    }
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return unauthenticated("invalid token: signature does not verify");
    case "ERR_JOSE_ALG_NOT_ALLOWED":
      return unauthenticated(`invalid token: only ${ALGORITHM} is accepted`);
    case "ERR_JWS_INVALID":
    case "ERR_JWT_INVALID":
    case "ERR_JOSE_NOT_SUPPORTED":
      return unauthenticated("invalid token: not a well-formed signed JWT");
    default:
      return error;
  }
}

/**
 * Verifies identity's ES256 access tokens with its published public keys, so
 * no service shares a secret with identity. Keys are fetched on first use and
 * cached; a token whose kid is not in the cache (identity rotated its key)
 * triggers one refresh, at most once per `refreshMinIntervalMs`, shared by
 * every call waiting at that moment. Besides, a key set older than
 * `refreshIntervalMs` is fetched again before the next verification, so a key
 * identity stopped publishing (retired) stops verifying within that bound. A
 * failed fetch keeps the keys already known, for at most `maxKeySetAgeMs`.
 * Identity publishes a new key before signing with it (see its rotation).
 *
 * A signature check (ECDSA P-256) costs more CPU than the rest of a call's
 * authentication, and a client sends the same token with every call, so a
 * token that verified is remembered by its exact text with the user it
 * names, the key object that verified it and its expiry. Sent again, it is
 * accepted without a new signature check only while that same key object is
 * still in the key set (a refetch imports new objects, so every remembered
 * token is checked in full again after a refresh: a retired key's tokens stop
 * within the same bound), the clock has not gone back, and it has not
 * expired; otherwise it is verified in full, which gives the refusal. Only
 * tokens that verified are remembered, at most VERIFIED_TOKENS_KEPT.
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const now = options.now ?? Date.now;
  const refreshMinIntervalMs = options.refreshMinIntervalMs ?? DEFAULT_REFRESH_MIN_INTERVAL_MS;
  const refreshIntervalMs = options.refreshIntervalMs ?? DEFAULT_JWKS_REFRESH_INTERVAL_MS;
  const maxKeySetAgeMs = options.maxKeySetAgeMs ?? DEFAULT_MAX_KEY_SET_AGE_MS;
  const maxTokenLifetimeSec = options.maxTokenLifetimeSec ?? DEFAULT_MAX_TOKEN_LIFETIME_SEC;
  const clockTolerance = options.clockToleranceSec ?? DEFAULT_CLOCK_TOLERANCE_SEC;
  let keys = new Map<string, CryptoKey>();
  /** When the key set in `keys` was fetched; undefined before the first success. */
  let keysFetchedAt: number | undefined;
  let lastFetchAt: number | undefined;
  let lastFetchFailed = false;
  let consecutiveFailures = 0;
  let inFlight: Promise<void> | undefined;
  /** Tokens that verified, by their text (see above); oldest first, for eviction. */
  const verified = new Map<string, { readonly user: AuthenticatedUser; readonly kid: string; readonly key: CryptoKey; readonly verifiedAt: number; readonly expiresAt: number }>();

  /** Fetches the keys unless a fetch is under way or one started less than `minIntervalMs` ago. */
  const refresh = async (minIntervalMs = refreshMinIntervalMs): Promise<void> => {
    if (inFlight) return inFlight;
    if (lastFetchAt !== undefined && now() - lastFetchAt < minIntervalMs) return;
    lastFetchAt = now();
    inFlight = (async () => {
      try {
        const fetchedAt = now();
        keys = await importKeys(await options.fetchKeys());
        keysFetchedAt = fetchedAt;
        lastFetchFailed = false;
        consecutiveFailures = 0;
      } catch {
        lastFetchFailed = true;
        consecutiveFailures++;
      } finally {
        inFlight = undefined;
      }
    })();
    return inFlight;
  };

  /** Refetches a key set older than the refresh interval; drops one too old to trust. */
  const ensureFresh = async (): Promise<void> => {
    // A periodic refetch shorter than the unknown-kid rate limit still happens on time (the bound holds), and while identity fails it retries at most once per interval.
    if (keysFetchedAt !== undefined && now() - keysFetchedAt >= refreshIntervalMs) await refresh(Math.min(refreshMinIntervalMs, refreshIntervalMs));
    if (keysFetchedAt !== undefined && now() - keysFetchedAt >= maxKeySetAgeMs) {
      keys = new Map();
      keysFetchedAt = undefined;
      lastFetchFailed = true;
    }
  };

  const keyFor = async (kid: string | undefined): Promise<CryptoKey> => {
    if (kid === undefined || kid === "") throw unauthenticated("invalid token: no key id (kid) in its header");
    await ensureFresh();
    const cached = keys.get(kid);
    if (cached) return cached;
    await refresh(keys.size === 0 ? Math.min(refreshMinIntervalMs, FIRST_RETRY_WITHOUT_KEYS_MS * 2 ** Math.max(0, consecutiveFailures - 1)) : refreshMinIntervalMs);
    const fetched = keys.get(kid);
    if (fetched) return fetched;
    // No key at all because identity could not be reached: the token may be
    // fine, so say UNAVAILABLE (worth retrying), not that it is invalid.
    if (keys.size === 0 && lastFetchFailed) throw new RpcError(Code.UNAVAILABLE, "cannot verify tokens: the signing keys could not be fetched");
    throw unauthenticated("invalid token: signed by an unknown key");
  };

  /** The user a remembered token names, when it may be accepted without a signature check (see above). */
  const rememberedUser = async (token: string): Promise<AuthenticatedUser | undefined> => {
    const entry = verified.get(token);
    if (!entry) return undefined;
    await ensureFresh();
    const at = now();
    if (keys.get(entry.kid) === entry.key && at >= entry.verifiedAt && at < entry.expiresAt) return entry.user;
    verified.delete(token);
    return undefined;
  };

  const verify = async (token: string): Promise<AuthenticatedUser> => {
    if (token.length === 0) throw unauthenticated("invalid token: empty");
    if (token.length > MAX_TOKEN_LENGTH) throw unauthenticated("invalid token: too long");
    const remembered = await rememberedUser(token);
    if (remembered) return remembered;
    const verifiedAt = now();
    let payload: JWTPayload;
    let signedWith: { kid: string; key: CryptoKey } | undefined;
    try {
      ({ payload } = await jwtVerify(
        token,
        async (header) => {
          const key = await keyFor(header.kid);
          signedWith = { kid: header.kid!, key };
          return key;
        },
        {
          issuer: options.issuer,
          audience: options.audience,
          algorithms: [ALGORITHM],
          clockTolerance,
          currentDate: new Date(verifiedAt),
          requiredClaims: ["sub", "exp", "iat"],
          typ: ACCESS_TOKEN_TYPE,
        },
      ));
    } catch (error) {
      throw refusal(error);
    }
    // jose has checked that iat and exp are present numbers; the lifetime they span is ours to bound.
    const lifetime = (payload.exp as number) - (payload.iat as number);
    if (lifetime > maxTokenLifetimeSec) throw unauthenticated(`invalid token: lifetime ${lifetime} s exceeds the maximum of ${maxTokenLifetimeSec} s`);
    const { sub, email } = payload as { sub?: unknown; email?: unknown };
    if (typeof sub !== "string" || sub === "") throw unauthenticated("invalid token: no subject");
    if (typeof email !== "string" || email === "") throw unauthenticated("invalid token: no email claim");
    const user = { userId: sub, email };
    if (signedWith) {
      if (verified.size >= VERIFIED_TOKENS_KEPT) verified.delete(verified.keys().next().value!);
      // Until jose's own expiry check would refuse it (exp plus the tolerance, on whole seconds).
      verified.set(token, { user, ...signedWith, verifiedAt, expiresAt: ((payload.exp as number) + clockTolerance) * 1000 });
    }
    return user;
  };

  return {
    verify,
    // async, so a bad header rejects the promise like every other refusal instead of throwing synchronously.
    authenticate: async (context) => verify(bearerToken(context)),
  };
}
