/**
 * The checks every call passes before its request body is read (Connect's
 * request gate): request id, the per-address limit, the token, the per-user
 * limit. In that order because each is cheaper than the next and guards it:
 * a flood of forged tokens from one address is stopped before any signature
 * is checked, and a verified user's limit needs the verified user.
 */
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger, TokenVerifier } from "@meshwork/platform";
import { rateLimitKeyOf } from "./client-address.js";
import { clientAddressKey, requestIdKey, tokenExpiresAtKey, userKey, type RequestGate } from "./edge-context.js";
import { requestIdFrom, REQUEST_ID_HEADER } from "./request-id.js";
import { methodKey } from "./routes.js";
import type { KeyedRateLimiter } from "./token-bucket.js";
import { AUTHORIZATION_HEADER, toConnectError } from "./upstream.js";

export const RETRY_AFTER_HEADER = "retry-after";
/** The same hint in milliseconds: Retry-After only speaks whole seconds, too coarse for a 50 ms wait. */
export const RETRY_AFTER_MS_HEADER = "retry-after-ms";

export interface EdgeGateOptions {
  /** Methods (methodKey) served without a token. */
  readonly publicMethods: ReadonlySet<string>;
  readonly verifier: Pick<TokenVerifier, "verify">;
  readonly perAddress: KeyedRateLimiter;
  readonly perUser: KeyedRateLimiter;
  readonly log: Logger;
}

// The platform verifier's own rule for the header, applied to Fetch Headers
// (which join a repeated header with ", ", so a doubled header fails it too).
const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;

export function createEdgeGate(options: EdgeGateOptions): RequestGate {
  // Per method descriptor, decided once: the key would otherwise be built as a new string on every call.
  const isPublic = new WeakMap<DescMethod, boolean>();
  const publicMethod = (method: DescMethod): boolean => {
    let known = isPublic.get(method);
    if (known === undefined) {
      known = options.publicMethods.has(methodKey(method));
      isPublic.set(method, known);
    }
    return known;
  };
  return async (ctx) => {
    const requestId = requestIdFrom(ctx.requestHeader);
    ctx.values.set(requestIdKey, requestId);
    // Set before any refusal, so even a refused call can be traced.
    ctx.responseHeader.set(REQUEST_ID_HEADER, requestId);

    refuseWhenLimited(options.perAddress, `address:${rateLimitKeyOf(ctx.values.get(clientAddressKey))}`, "address");

    if (publicMethod(ctx.method)) return;

    const header = ctx.requestHeader.get(AUTHORIZATION_HEADER);
    if (header === null) throw new ConnectError("missing authorization header: send `authorization: Bearer <token>`", Code.Unauthenticated);
    const token = BEARER.exec(header)?.[1];
    if (token === undefined) throw new ConnectError("malformed authorization header: expected `Bearer <token>`", Code.Unauthenticated);
    const user = await options.verifier.verify(token).catch((error: unknown) => {
      // UNAUTHENTICATED saying why, or UNAVAILABLE when identity's keys cannot be fetched.
      throw toConnectError(error, options.log, requestId);
    });
    ctx.values.set(userKey, user);
    ctx.values.set(tokenExpiresAtKey, expiresAtOf(token));

    refuseWhenLimited(options.perUser, `user:${user.userId}`, "user");
  };
}

function refuseWhenLimited(limiter: KeyedRateLimiter, key: string, scope: "address" | "user"): void {
  const decision = limiter.take(key);
  if (decision.allowed) return;
  const { retryAfterMs } = decision;
  throw new ConnectError(`rate limit exceeded for this ${scope}: retry after ${retryAfterMs} ms`, Code.ResourceExhausted, {
    [RETRY_AFTER_HEADER]: String(Math.ceil(retryAfterMs / 1000)),
    [RETRY_AFTER_MS_HEADER]: String(retryAfterMs),
  });
}

/**
 * The `exp` of a token the verifier has just accepted, in epoch ms. Read
 * here rather than returned by the platform verifier so the edge needs
 * nothing more from it; the verifier requires `exp`, so it is there.
 */
function expiresAtOf(token: string): number | undefined {
  try {
    const payload: unknown = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8"));
    const exp = (payload as { exp?: unknown }).exp;
    return typeof exp === "number" && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
