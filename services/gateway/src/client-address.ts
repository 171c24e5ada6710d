import { isIPv6 } from "node:net";

/**
 * Who is calling, for the per-address rate limit.
 *
 * With no trusted proxy in front (the default), only the TCP peer counts: an
 * X-Forwarded-For header is the caller's own say-so and would let anyone pick
 * a fresh address per request. With `trustedHops` proxies in front, each one
 * appended the address it saw, so the entry `trustedHops` from the right is
 * the one our nearest trusted proxy vouches for.
 */
export function clientAddress(peer: string | undefined, forwardedFor: string | readonly string[] | undefined, trustedHops: number): string {
  let address = peer ?? "unknown";
  if (trustedHops > 0 && forwardedFor !== undefined) {
    const entries = (typeof forwardedFor === "string" ? [forwardedFor] : forwardedFor)
      .flatMap((value) => value.split(","))
      .map((entry) => entry.trim())
      .filter((entry) => entry !== "");
    const vouched = entries[Math.max(0, entries.length - trustedHops)];
    if (vouched !== undefined) address = vouched;
  }
  return rateLimitKeyOf(address);
}

/**
 * IPv4-mapped IPv6 ("::ffff:10.0.0.1") as IPv4; IPv6 by its /64 prefix,
 * because one host usually holds a whole /64 and could otherwise rotate
 * through addresses to dodge the limit.
 */
export function rateLimitKeyOf(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1]) return mapped[1];
  const bare = address.replace(/^\[(.*)\]$/, "$1").replace(/%.*$/, "");
  if (!isIPv6(bare)) return address;
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
