/**
 * The part of Consul's ACL system the simulated HTTP API enforces, written
 * from Consul's ACL documentation (rules reference, policies, tokens) rather
 * than from its source:
 *
 * - rules in HCL (`key_prefix "meshwork/" { policy = "read" }`,
 *   `acl = "write"`) or the equivalent JSON;
 * - segmented resources (key, service, node, agent, session, event, query)
 *   with an exact form and a `_prefix` form; unsegmented ones (acl,
 *   operator, keyring, mesh, peering);
 * - dispositions read, list (key_prefix only), write, deny;
 * - evaluation: an exact rule for the name wins over any prefix rule; else
 *   the longest matching prefix decides; no match falls to the default
 *   policy. Rules for the same segment from several policies merge with
 *   deny over write over list over read, as the docs' precedence says;
 * - what a disposition grants: write grants read, list and write; list
 *   grants read and list; read grants read; deny grants nothing.
 *
 * Not simulated: namespaces and partitions (Enterprise), `intentions`,
 * roles, service and node identities, templated policies, auth methods,
 * token expiry.
 */

export type Access = "read" | "list" | "write";
export type Disposition = "read" | "list" | "write" | "deny";

/** Resources whose rules name a segment ("key", and its "key_prefix" form). */
export const SEGMENTED_RESOURCES = ["key", "service", "node", "agent", "session", "event", "query"] as const;
export type SegmentedResource = (typeof SEGMENTED_RESOURCES)[number];
/** Resources with one disposition for the whole datacenter. */
export const UNSEGMENTED_RESOURCES = ["acl", "operator", "keyring", "mesh", "peering"] as const;
export type UnsegmentedResource = (typeof UNSEGMENTED_RESOURCES)[number];
export type Resource = SegmentedResource | UnsegmentedResource;

export interface SegmentRule {
  readonly resource: SegmentedResource;
  readonly segment: string;
  readonly prefix: boolean;
  readonly disposition: Disposition;
}

export interface ParsedRules {
  readonly segments: readonly SegmentRule[];
  readonly global: Readonly<Partial<Record<UnsegmentedResource, Disposition>>>;
}

export class AclRuleError extends Error {}

const DISPOSITIONS: readonly Disposition[] = ["read", "list", "write", "deny"];
// Higher wins when several policies name the same segment.
const PRECEDENCE: Record<Disposition, number> = { read: 0, list: 1, write: 2, deny: 3 };

function isSegmented(name: string): name is SegmentedResource {
  return (SEGMENTED_RESOURCES as readonly string[]).includes(name);
}

function isUnsegmented(name: string): name is UnsegmentedResource {
  return (UNSEGMENTED_RESOURCES as readonly string[]).includes(name);
}

function disposition(value: unknown, where: string): Disposition {
  if (typeof value !== "string" || !(DISPOSITIONS as readonly string[]).includes(value)) {
    throw new AclRuleError(`${where}: invalid policy ${JSON.stringify(value)} (expected read, list, write or deny)`);
  }
  return value as Disposition;
}

function segmentRule(block: string, segment: string, value: unknown): SegmentRule {
  const prefix = block.endsWith("_prefix");
  const resource = prefix ? block.slice(0, -"_prefix".length) : block;
  if (!isSegmented(resource)) throw new AclRuleError(`unknown ACL resource "${block}"`);
  const where = `${block} "${segment}"`;
  const policy = disposition(value, where);
  // The docs allow "list" only on key_prefix.
  if (policy === "list" && !(resource === "key" && prefix)) throw new AclRuleError(`${where}: "list" is only valid for key_prefix`);
  return { resource, segment, prefix, disposition: policy };
}

/** The JSON form: { "key_prefix": { "a/": { "policy": "read" } }, "acl": "write" }. */
function parseJsonRules(text: string): ParsedRules {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new AclRuleError(`rules are not valid JSON: ${(error as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new AclRuleError("rules must be an object");
  const segments: SegmentRule[] = [];
  const global: Partial<Record<UnsegmentedResource, Disposition>> = {};
  for (const [block, body] of Object.entries(value)) {
    if (isUnsegmented(block)) {
      global[block] = disposition(body, block);
      continue;
    }
    if (typeof body !== "object" || body === null) throw new AclRuleError(`${block}: expected an object of segments`);
    for (const [segment, rule] of Object.entries(body)) {
      segments.push(segmentRule(block, segment, (rule as { policy?: unknown } | null)?.policy));
    }
  }
  return { segments, global };
}

// One HCL token: a quoted string (Go escapes \" and \\), a bare word, or punctuation.
const HCL_TOKEN = /\s*(?:#[^\n]*|\/\/[^\n]*|("(?:[^"\\]|\\.)*")|([A-Za-z_][A-Za-z0-9_-]*)|([{}=]))/y;

function tokenizeHcl(text: string): string[] {
  const tokens: string[] = [];
  HCL_TOKEN.lastIndex = 0;
  let position = 0;
  while (position < text.length) {
    if (/^\s*$/.test(text.slice(position))) break;
    HCL_TOKEN.lastIndex = position;
    const match = HCL_TOKEN.exec(text);
    if (match === null) throw new AclRuleError(`cannot parse rules at offset ${position}: ${JSON.stringify(text.slice(position, position + 20))}`);
    position = HCL_TOKEN.lastIndex;
    const token = match[1] ?? match[2] ?? match[3];
    if (token !== undefined) tokens.push(token);
  }
  return tokens;
}

function unquote(token: string | undefined, what: string): string {
  if (token === undefined || !token.startsWith('"')) throw new AclRuleError(`expected a quoted ${what}, got ${token ?? "end of rules"}`);
  return JSON.parse(token) as string;
}

/** The subset of HCL that ACL rules use: blocks with one `policy = "..."`, and `name = "..."`. */
function parseHclRules(text: string): ParsedRules {
  const tokens = tokenizeHcl(text);
  const segments: SegmentRule[] = [];
  const global: Partial<Record<UnsegmentedResource, Disposition>> = {};
  let i = 0;
  const expect = (wanted: string): void => {
    const got = tokens[i];
    if (got !== wanted) throw new AclRuleError(`expected "${wanted}", got ${got ?? "end of rules"}`);
    i += 1;
  };
  while (i < tokens.length) {
    const block = tokens[i] ?? "";
    i += 1;
    if (tokens[i] === "=") {
      i += 1;
      if (!isUnsegmented(block)) throw new AclRuleError(`"${block} = ..." is not a valid rule (segmented resources need a name and a block)`);
      global[block] = disposition(unquote(tokens[i], `${block} policy`), block);
      i += 1;
      continue;
    }
    const segment = unquote(tokens[i], `${block} name`);
    i += 1;
    expect("{");
    let policy: unknown;
    while (tokens[i] !== "}") {
      const field = tokens[i];
      if (field === undefined) throw new AclRuleError(`${block} "${segment}": missing "}"`);
      i += 1;
      expect("=");
      const value = unquote(tokens[i], `${field} value`);
      i += 1;
      if (field === "policy") policy = value;
      else throw new AclRuleError(`${block} "${segment}": unknown field "${field}"`);
    }
    i += 1;
    segments.push(segmentRule(block, segment, policy));
  }
  return { segments, global };
}

/** Parses a policy's Rules as Consul accepts them: HCL, or JSON when it starts with "{". */
export function parseAclRules(text: string): ParsedRules {
  return text.trimStart().startsWith("{") ? parseJsonRules(text) : parseHclRules(text);
}

/** What a token may do: the union of its policies' rules, or everything for a management token. */
export interface Authorizer {
  allows(resource: Resource, name: string, access: Access): boolean;
}

function grants(granted: Disposition, wanted: Access): boolean {
  switch (granted) {
    case "write":
      return true;
    case "list":
      return wanted === "read" || wanted === "list";
    case "read":
      return wanted === "read";
    case "deny":
      return false;
  }
}

export const MANAGEMENT_AUTHORIZER: Authorizer = { allows: () => true };

export function createAuthorizer(policies: readonly ParsedRules[], defaultPolicy: "allow" | "deny"): Authorizer {
  // Merge first, so that deny from any policy beats write from another for the same segment.
  const merged = new Map<string, SegmentRule>();
  const global: Partial<Record<UnsegmentedResource, Disposition>> = {};
  for (const rules of policies) {
    for (const rule of rules.segments) {
      const id = `${rule.resource}\u0000${rule.prefix ? "prefix" : "exact"}\u0000${rule.segment}`;
      const existing = merged.get(id);
      if (existing === undefined || PRECEDENCE[rule.disposition] > PRECEDENCE[existing.disposition]) merged.set(id, rule);
    }
    for (const [resource, value] of Object.entries(rules.global) as [UnsegmentedResource, Disposition][]) {
      const existing = global[resource];
      if (existing === undefined || PRECEDENCE[value] > PRECEDENCE[existing]) global[resource] = value;
    }
  }
  const rules = [...merged.values()];
  return {
    allows(resource, name, access) {
      let decided: Disposition | undefined;
      if (isUnsegmented(resource)) {
        decided = global[resource];
      } else {
        const exact = rules.find((rule) => rule.resource === resource && !rule.prefix && rule.segment === name);
        if (exact !== undefined) {
          decided = exact.disposition;
        } else {
          let longest: SegmentRule | undefined;
          for (const rule of rules) {
            if (rule.resource !== resource || !rule.prefix || !name.startsWith(rule.segment)) continue;
            if (longest === undefined || rule.segment.length > longest.segment.length) longest = rule;
          }
          decided = longest?.disposition;
        }
      }
      if (decided === undefined) return defaultPolicy === "allow";
      return grants(decided, access);
    },
  };
}
