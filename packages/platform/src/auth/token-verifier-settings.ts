import type { ConfigSpec } from "../config.js";
import { settings } from "../config-schemas.js";
import { DEFAULT_JWKS_REFRESH_INTERVAL_MS, DEFAULT_MAX_TOKEN_LIFETIME_SEC } from "./token-verifier.js";

/**
 * The settings of a service that verifies access tokens, under its own prefix
 * (ORDERS_JWKS_REFRESH_MS, ...). A service spreads them into its spec and
 * passes them to createTokenVerifier with tokenVerifierOptions().
 */
export function tokenVerifierSettings(prefix: string) {
  return {
    jwksRefreshMs: {
      env: `${prefix}_JWKS_REFRESH_MS`,
      doc: "How often identity's published keys are fetched again (ms). Bound on trusting a retired signing key: it stops verifying here at most this long (plus one GetJwks call) after identity stops publishing it.",
      schema: settings.positiveInt().max(3_600_000, "expected at most 3600000 (one hour)"),
      default: DEFAULT_JWKS_REFRESH_INTERVAL_MS,
    },
    tokenMaxLifetimeSeconds: {
      env: `${prefix}_TOKEN_MAX_LIFETIME_SECONDS`,
      doc: "Longest lifetime (exp - iat) an access token may claim, in seconds; longer ones are refused. Keep it at or above identity's IDENTITY_TOKEN_TTL_SECONDS.",
      schema: settings.positiveInt().max(86_400, "expected at most 86400 (one day)"),
      default: DEFAULT_MAX_TOKEN_LIFETIME_SEC,
    },
  } satisfies ConfigSpec;
}

/** The verifier options those settings stand for. */
export const tokenVerifierOptions = (config: { readonly jwksRefreshMs: number; readonly tokenMaxLifetimeSeconds: number }) => ({
  refreshIntervalMs: config.jwksRefreshMs,
  maxTokenLifetimeSec: config.tokenMaxLifetimeSeconds,
});
