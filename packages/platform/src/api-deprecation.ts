/**
 * Deprecated API packages, announced on every answer: RFC 9745's
 * `Deprecation` (when the package was deprecated, `@<unix seconds>`) and RFC
 * 8594's `Sunset` (after when it may go, an HTTP-date). The dates are the
 * ones `npm run api:release -- <version> --sunset <package>=<date>` recorded
 * (@meshwork/contracts/api-lifecycle), so the headers say what the release
 * said. The gRPC host sends them as response metadata, the gateway as HTTP
 * response headers (which gRPC also reads as metadata).
 */
import { API_LIFECYCLE, type PackageLifecycle } from "@meshwork/contracts/api-lifecycle";

export type ApiLifecycle = Readonly<Record<string, PackageLifecycle>>;

/** Lower case: gRPC metadata keys must be, and HTTP header names are case-insensitive. */
export const DEPRECATION_HEADER = "deprecation";
export const SUNSET_HEADER = "sunset";

/** "shop.orders.v1" of "shop.orders.v1.OrderService". */
export const packageOf = (serviceTypeName: string): string => serviceTypeName.slice(0, Math.max(0, serviceTypeName.lastIndexOf(".")));

const midnightUtc = (date: string): Date => new Date(`${date}T00:00:00Z`);

/**
 * The headers for calls of a service whose package the lifecycle marks
 * deprecated, or undefined for a current one. A sunset without a deprecation
 * date does not occur (the release records both); a deprecation without a
 * sunset sends `Deprecation` alone.
 */
export function deprecationHeaders(serviceTypeName: string, lifecycle: ApiLifecycle = API_LIFECYCLE): Readonly<Record<string, string>> | undefined {
  const record = lifecycle[packageOf(serviceTypeName)];
  if (record?.deprecated === undefined) return undefined;
  const headers: Record<string, string> = { [DEPRECATION_HEADER]: `@${Math.floor(midnightUtc(record.deprecated).getTime() / 1000)}` };
  // toUTCString() is RFC 7231's IMF-fixdate ("Wed, 30 Jun 2027 00:00:00 GMT"), the HTTP-date RFC 8594 asks for.
  if (record.sunset !== undefined) headers[SUNSET_HEADER] = midnightUtc(record.sunset).toUTCString();
  return headers;
}
