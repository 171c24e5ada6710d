// Written by `npm run api:release` from api/releases.json (release 1.2.0): never edit by hand.

/** RFC 9745 deprecation and RFC 8594 sunset dates (YYYY-MM-DD, UTC) of a package. */
export interface PackageLifecycle {
  readonly deprecated?: string;
  readonly sunset?: string;
}

/** The API release these dates come from. */
export const API_RELEASE = "1.2.0";

/** Every package of that release, by full name (e.g. "shop.orders.v1"). */
export const API_LIFECYCLE: Readonly<Record<string, PackageLifecycle>> = {
  "shop.catalog.v1": {},
  "shop.common.v1": {},
  "shop.gateway.v1": {},
  "shop.identity.v1": {},
  "shop.notifications.v1": {},
  "shop.orders.v1": { deprecated: "2026-12-06", sunset: "2027-06-30" },
  "shop.orders.v2": {},
  "shop.payments.v1": {},
};
