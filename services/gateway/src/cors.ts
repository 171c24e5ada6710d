/**
 * CORS for the web origins the operator allows, so a browser app on another
 * origin can call the gateway with Connect or gRPC-web. The header lists come
 * from Connect's own `cors` constants (what its protocols need) plus ours.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import { cors as connectCors } from "@connectrpc/connect";
import { DEPRECATION_HEADER, SUNSET_HEADER } from "@meshwork/platform";
import { INVALID_FIELD_TRAILER } from "@meshwork/platform/errors";
import { RETRY_AFTER_HEADER, RETRY_AFTER_MS_HEADER } from "./edge-gate.js";
import { STALE_HEADER } from "./forward.js";
import { REQUEST_ID_HEADER } from "./request-id.js";
import { AUTHORIZATION_HEADER } from "./upstream.js";

/** How long a browser may reuse a preflight answer (Chromium caps it at 2 hours). */
const PREFLIGHT_MAX_AGE_SEC = 7200;

// traceparent and tracestate: a traced web client continues its trace through the gateway.
export const CORS_ALLOWED_HEADERS = [...connectCors.allowedHeaders, AUTHORIZATION_HEADER, REQUEST_ID_HEADER, "traceparent", "tracestate"];
export const CORS_EXPOSED_HEADERS = [
  ...connectCors.exposedHeaders,
  REQUEST_ID_HEADER,
  RETRY_AFTER_HEADER,
  RETRY_AFTER_MS_HEADER,
  // A catalog answer served from the cache while catalog is down.
  STALE_HEADER,
  INVALID_FIELD_TRAILER,
  // Connect unary sends trailers as "trailer-" headers.
  `trailer-${INVALID_FIELD_TRAILER}`,
  // A deprecated API version's answer says so, and until when (deprecation.ts): a browser client may warn.
  DEPRECATION_HEADER,
  SUNSET_HEADER,
];

export type CorsVerdict =
  /** Not a cross-origin browser request, or one from a disallowed origin that is not a preflight: carry on, add nothing. */
  | { readonly kind: "pass" }
  /** An allowed origin's request: carry on, with these headers on the response. */
  | { readonly kind: "allow"; readonly headers: OutgoingHttpHeaders }
  /** A preflight: answer it with this status and these headers, and stop. */
  | { readonly kind: "preflight"; readonly status: number; readonly headers: OutgoingHttpHeaders };

export interface CorsPolicy {
  judge(method: string | undefined, headers: IncomingHttpHeaders): CorsVerdict;
}

/**
 * `origins` are exact origins ("http://localhost:5173"), or "*" for any.
 * A preflight from any other origin is refused with 403 and no CORS headers;
 * an actual request from one gets no CORS headers, so the browser does not
 * let the page read the answer. Origins are echoed rather than answered with
 * "*", and `Vary: Origin` keeps caches from serving one origin's answer to another.
 */
export function createCorsPolicy(origins: readonly string[]): CorsPolicy {
  const any = origins.includes("*");
  const allowed = new Set(origins);
  return {
    judge(method, headers) {
      const origin = headers.origin;
      if (origin === undefined) return { kind: "pass" };
      const ok = any || allowed.has(origin);
      const isPreflight = method === "OPTIONS" && headers["access-control-request-method"] !== undefined;
      if (isPreflight) {
        if (!ok) return { kind: "preflight", status: 403, headers: { vary: "Origin" } };
        return {
          kind: "preflight",
          status: 204,
          headers: {
            "access-control-allow-origin": origin,
            "access-control-allow-methods": connectCors.allowedMethods.join(", "),
            "access-control-allow-headers": CORS_ALLOWED_HEADERS.join(", "),
            "access-control-max-age": String(PREFLIGHT_MAX_AGE_SEC),
            vary: "Origin",
          },
        };
      }
      if (!ok) return { kind: "pass" };
      return {
        kind: "allow",
        headers: {
          "access-control-allow-origin": origin,
          "access-control-expose-headers": CORS_EXPOSED_HEADERS.join(", "),
          vary: "Origin",
        },
      };
    },
  };
}
