/**
 * Sign-in throttling: exponential back-off per account and per client
 * address after repeated failures, decided before any password is hashed, so
 * guessing costs the guesser time and costs identity nothing. Pure: the clock
 * is injected, nothing here touches the network.
 *
 * The state lives in this instance's memory. With several identity instances
 * each keeps its own counts, so an attacker spread across N instances gets up
 * to N times the allowance; the caps still hold per instance, and a shared
 * store (PostgreSQL, at one write per failed sign-in) would be the next step
 * if that matters more than the write load.
 */
import { isIP } from "node:net";
import { addressLimitKey, CLIENT_ADDRESS_HEADER } from "@meshwork/platform";

export interface ThrottlePolicy {
  /** Failures allowed before the first wait: the attempt after the last of them waits baseDelayMs. */
  readonly freeFailures: number;
  /** Wait after the first failure over the allowance; doubles with each further failure. */
  readonly baseDelayMs: number;
  /** Longest wait. */
  readonly maxDelayMs: number;
  /** A key with no failure for this long starts again from zero. */
  readonly windowMs: number;
}

export interface SignInThrottleOptions {
  readonly account: ThrottlePolicy;
  readonly address: ThrottlePolicy;
  /** Most keys remembered per kind; the least recently failed are forgotten first, so memory stays bounded. */
  readonly maxEntries?: number;
  readonly now?: () => number;
}

/** Why and for how long an attempt is refused. */
export interface ThrottleRefusal {
  readonly scope: "account" | "address";
  readonly retryAfterMs: number;
}

export interface SignInThrottle {
  /** A refusal if either key is still waiting out a back-off; undefined when the attempt may go on. */
  check(account: string, address: string): ThrottleRefusal | undefined;
  /** Counts a failed attempt (wrong password or unknown email alike) against both keys. */
  recordFailure(account: string, address: string): void;
  /** A successful sign-in clears the account's count; the address keeps its own (one good password proves nothing about the others tried from there). */
  recordSuccess(account: string): void;
}

interface Entry {
  failures: number;
  lastFailureAt: number;
  blockedUntil: number;
}

const DEFAULT_MAX_ENTRIES = 100_000;

function createCounter(policy: ThrottlePolicy, maxEntries: number, now: () => number) {
  const entries = new Map<string, Entry>();
  const current = (key: string): Entry | undefined => {
    const entry = entries.get(key);
    if (entry && now() - entry.lastFailureAt > policy.windowMs && now() >= entry.blockedUntil) {
      entries.delete(key);
      return undefined;
    }
    return entry;
  };
  return {
    retryAfterMs(key: string): number {
      const entry = current(key);
      return entry ? Math.max(0, entry.blockedUntil - now()) : 0;
    },
    fail(key: string): void {
      const at = now();
      const entry = current(key) ?? { failures: 0, lastFailureAt: at, blockedUntil: 0 };
      entry.failures += 1;
      entry.lastFailureAt = at;
      // The failure that uses up the allowance starts the first wait; each later one doubles it.
      const over = entry.failures - policy.freeFailures;
      // 2 ** over grows without bound; the cap keeps the wait (and the number) finite.
      if (over >= 0) entry.blockedUntil = at + Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(over, 40));
      // Re-inserting keeps the Map in least-recently-failed order, so the first key is the one to forget.
      entries.delete(key);
      entries.set(key, entry);
      if (entries.size > maxEntries) {
        const oldest = entries.keys().next().value;
        if (oldest !== undefined) entries.delete(oldest);
      }
    },
    clear(key: string): void {
      entries.delete(key);
    },
  };
}

export function createSignInThrottle(options: SignInThrottleOptions): SignInThrottle {
  const now = options.now ?? Date.now;
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const accounts = createCounter(options.account, maxEntries, now);
  const addresses = createCounter(options.address, maxEntries, now);
  return {
    check(account, address) {
      const accountWait = accounts.retryAfterMs(account);
      const addressWait = addresses.retryAfterMs(address);
      if (accountWait === 0 && addressWait === 0) return undefined;
      return accountWait >= addressWait ? { scope: "account", retryAfterMs: accountWait } : { scope: "address", retryAfterMs: addressWait };
    },
    recordFailure(account, address) {
      accounts.fail(account);
      addresses.fail(address);
    },
    recordSuccess(account) {
      accounts.clear(account);
    },
  };
}

/** identity counts an address the way the gateway's rate limit does (IPv6 by its /64). */
export const throttleKeyOfAddress = addressLimitKey;
export { CLIENT_ADDRESS_HEADER };

/** "127.0.0.1:5123", "[::1]:5123", "ipv4:10.0.0.1:80" → the address alone. */
export function addressOfPeer(peer: string): string {
  const bare = peer.replace(/^ipv[46]:/, "");
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(bare);
  if (bracketed?.[1]) return bracketed[1];
  const ipv4 = /^([^:]+):\d+$/.exec(bare);
  return ipv4?.[1] ?? bare;
}

/**
 * The client's address: from the gateway's metadata when it is a well-formed
 * IP address, else the peer of the call (a caller inside the mesh). Only the
 * gateway may call SignIn (the mesh policy), so only it can set the header.
 */
export function clientAddress(metadata: { get(key: string): unknown[] }, peer: string): string {
  const [forwarded] = metadata.get(CLIENT_ADDRESS_HEADER);
  if (typeof forwarded === "string" && forwarded.length <= 64 && isIP(forwarded.trim()) !== 0) return forwarded.trim();
  return addressOfPeer(peer);
}
