import { BlockList, isIP } from "node:net";
import { addressLimitKey, bareAddress } from "@meshwork/platform";

/**
 * The proxies allowed to say who the client is: a node:net BlockList used as
 * an allow list of networks (CIDRs, IPv4 and IPv6), built from
 * GATEWAY_TRUSTED_PROXIES.
 */
export interface TrustedProxies {
  /** Whether `address` (a bare IP) is one of the trusted networks. */
  has(address: string): boolean;
}

/**
 * "10.0.0.0/8, fd00::/8, 192.0.2.7" as trusted networks; a bare address is a
 * network of one. Empty trusts nobody: the TCP peer is the client. A bad entry
 * stops start-up with the setting and the entry named, since a typo here
 * would silently key the rate limit on a proxy.
 */
export function parseTrustedProxies(text: string, setting = "GATEWAY_TRUSTED_PROXIES"): TrustedProxies {
  const list = new BlockList();
  const entries = text
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  for (const entry of entries) {
    const [network = "", prefixText, ...rest] = entry.split("/");
    const family = isIP(network);
    const bits = family === 4 ? 32 : 128;
    const prefix = prefixText === undefined ? bits : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : Number.NaN;
    if (family === 0 || rest.length > 0 || !(prefix >= 0 && prefix <= bits)) {
      throw new Error(`${setting}: "${entry}" is not a network such as 10.0.0.0/8, fd00::/8 or 192.0.2.7`);
    }
    list.addSubnet(network, prefix, family === 4 ? "ipv4" : "ipv6");
  }
  // Nobody trusted (the default): answered without isIP and BlockList.check,
  // which builds a SocketAddress on every call.
  if (entries.length === 0) return { has: () => false };
  return {
    has(address) {
      const family = isIP(address);
      return family !== 0 && list.check(address, family === 4 ? "ipv4" : "ipv6");
    },
  };
}

/**
 * Who is calling: the address the per-address rate limit keys on and that
 * backends are told (x-meshwork-client-address).
 *
 * X-Forwarded-For is walked from the right, because each proxy appends the
 * address it received the request from: an entry is believed only when the
 * hop to its right (the TCP peer first) is a trusted proxy. The first address
 * that is not itself a trusted proxy is the client. So with nobody trusted
 * (the default) the TCP peer is the client, and whatever a client writes into
 * the header itself is never reached: it sits left of the entry the first
 * trusted proxy appended. An entry a trusted proxy wrote that is not an
 * address ("unknown", a port, garbage) ends the walk at that proxy.
 */
export function clientAddress(peer: string | undefined, forwardedFor: string | readonly string[] | undefined, trusted: TrustedProxies): string {
  let address = peer === undefined ? "unknown" : bareAddress(peer);
  if (!trusted.has(address) || forwardedFor === undefined) return address;
  const entries = (typeof forwardedFor === "string" ? [forwardedFor] : forwardedFor).flatMap((value) => value.split(",")).map((entry) => entry.trim());
  for (let index = entries.length - 1; index >= 0; index--) {
    const entry = bareAddress(entries[index]!);
    if (isIP(entry) === 0) return address;
    address = entry;
    if (!trusted.has(address)) return address;
  }
  // Every hop was a trusted proxy: the farthest one is all there is to go on.
  return address;
}

/** The rate-limit key of an address (IPv6 by its /64): the platform's, shared with identity's sign-in throttle. */
export const rateLimitKeyOf = addressLimitKey;
