import { acceptRequestId, REQUEST_ID_HEADER } from "@meshwork/platform";

export { REQUEST_ID_HEADER };

/**
 * The caller's `x-request-id` when it is well-formed by the platform's rule
 * (the same one every backend applies), otherwise a new one. A header sent
 * twice arrives joined with ", ", which is not well-formed: it is replaced.
 */
export function requestIdFrom(headers: Pick<Headers, "get">): string {
  return acceptRequestId(headers.get(REQUEST_ID_HEADER) ?? undefined);
}
