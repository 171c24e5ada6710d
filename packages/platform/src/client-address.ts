/**
 * The client's address as the edge passes it into the mesh, and the key a
 * per-address limit counts it under (the gateway's rate limit, identity's
 * sign-in throttle): one definition, so the two count the same client alike.
 */
import { isIPv6 } from "node:net";

/** The metadata key the gateway puts the client's address in, after its trusted-proxy logic and having dropped any the client sent. */
export const CLIENT_ADDRESS_HEADER = "x-meshwork-client-address";

/** "::ffff:10.0.0.1" as 10.0.0.1, "[2001:db8::1]" and "fe80::1%eth0" as bare IPv6. */
export function bareAddress(address: string): string {
  const unbracketed = address.replace(/^\[(.*)\]$/, "$1").replace(/%.*$/, "");
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(unbracketed);
  return mapped?.[1] ?? unbracketed;
}

/**
 * The key of an address for a per-address limit: IPv4 as is, IPv6 by its /64
 * prefix, because one host usually holds a whole /64 and could otherwise
 * rotate through addresses to dodge the limit.
 */
export function addressLimitKey(address: string): string {
  const bare = bareAddress(address);
  if (!isIPv6(bare)) return bare;
  return `${expandIPv6(bare).slice(0, 4).join(":")}::/64`;
}

/** "2001:db8::1" as its eight hextets. */
function expandIPv6(address: string): string[] {
  const [head = "", tail] = address.split("::");
  const part = (text: string): string[] => (text === "" ? [] : text.split(":"));
  const left = part(head);
  const right = tail === undefined ? [] : part(tail);
  // An embedded IPv4 tail ("::1.2.3.4") stands for two hextets; it only ever
  // sits in the last 32 bits, which the /64 prefix drops anyway.
  const width = (groups: string[]): number => groups.reduce((sum, group) => sum + (group.includes(".") ? 2 : 1), 0);
  const zeros = Array.from({ length: Math.max(0, 8 - width(left) - width(right)) }, () => "0");
  return [...left, ...zeros, ...right].map((group) => (group.includes(".") ? group : group.toLowerCase().replace(/^0+(?=.)/, "")));
}
