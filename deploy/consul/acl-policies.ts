/**
 * Consul ACL policies, one per service, derived from the call graph
 * (deploy/call-graph.ts): the only place they are defined. `npm run
 * consul:acl` renders them to deploy/consul/acl.json, which the compose
 * bootstrap (deploy/consul/acl-bootstrap.mjs, plain Node, no TypeScript)
 * loads into the agent; deploy/test/consul-acl.security.test.ts fails when
 * the two disagree.
 *
 * What each service's token may do, and nothing else (default deny):
 * - register and deregister only its own instances (`service "<self>"
 *   write`), and only if something calls it: a service nobody calls (the
 *   gateway, reached from outside) is never discovered, so never registers.
 *   Consul's agent API asks service:write for a registration and its checks;
 *   it asks node:write only for node-level checks, which no service makes;
 * - discover only what it calls (`service "<callee>" read`, plus
 *   `node_prefix "" read`, because /v1/health/service hides instances on
 *   nodes the token may not read);
 * - read only its own live settings (`key_prefix "meshwork/<self>/" read`),
 *   and only if it reads live settings from Consul at all; no service writes KV.
 *
 * The agent gets its own token (`node "<node>" write` and `service_prefix
 * "" read`, what Consul's docs give an agent token) so that it can keep its
 * node and the services registered on it in the catalog.
 */
import { createHash } from "node:crypto";
import { APP_SERVICES, CALL_GRAPH, callersOf, type AppService } from "../call-graph.js";

/** The root every live setting lives under (live-config/consul-kv.ts's default prefix). */
export const CONSUL_KV_ROOT = "meshwork/";

/**
 * Services that read live settings from Consul KV: those whose main.ts calls
 * createLiveConfigFor (the security test checks this list against the source).
 */
export const LIVE_CONFIG_READERS: readonly AppService[] = ["gateway", "notifications", "orders", "payments"];

/** The agent's node name in compose (node_name in deploy/consul/agent.hcl). */
export const CONSUL_NODE_NAME = "consul";

export type RuleResource = "service" | "service_prefix" | "node" | "node_prefix" | "key" | "key_prefix";

export interface AclRule {
  readonly resource: RuleResource;
  readonly segment: string;
  readonly policy: "read" | "write";
  /** Why the rule exists; rendered as a comment in the policy. */
  readonly why: string;
}

export interface AclPolicyPlan {
  readonly name: string;
  readonly description: string;
  /** HCL as Consul's /v1/acl/policy takes it. */
  readonly rules: string;
}

export interface AclTokenPlan {
  /** Fixed, so that a re-run of the bootstrap finds and updates the same token. */
  readonly accessorId: string;
  readonly description: string;
  readonly policy: AclPolicyPlan;
}

export interface ServiceTokenPlan extends AclTokenPlan {
  readonly service: AppService;
}

export interface AclPlan {
  readonly comment: string;
  readonly agent: AclTokenPlan & { readonly node: string };
  readonly services: readonly ServiceTokenPlan[];
}

/** The services `service` calls, in the call graph (any scope: a health check is a call too). */
export function calleesOf(service: AppService): AppService[] {
  return [...new Set(CALL_GRAPH.filter((edge) => edge.caller === service).map((edge) => edge.callee))].sort();
}

/** The rules of one service's policy, each with why. */
export function serviceRules(service: AppService): AclRule[] {
  const rules: AclRule[] = [];
  if (callersOf(service).length > 0) {
    rules.push({
      resource: "service",
      segment: service,
      policy: "write",
      why: `registers and deregisters its own instances (with their gRPC health check); called by ${callersOf(service).join(", ")}`,
    });
  }
  const callees = calleesOf(service);
  for (const callee of callees) {
    rules.push({ resource: "service", segment: callee, policy: "read", why: `discovers the passing instances of ${callee}, which it calls` });
  }
  if (callees.length > 0) {
    rules.push({ resource: "node_prefix", segment: "", policy: "read", why: "/v1/health/service leaves out instances on nodes the token may not read" });
  }
  if (LIVE_CONFIG_READERS.includes(service)) {
    rules.push({ resource: "key_prefix", segment: `${CONSUL_KV_ROOT}${service}/`, policy: "read", why: "reads its own live settings" });
  }
  return rules;
}

export function renderRules(rules: readonly AclRule[]): string {
  return rules.map((rule) => `# ${rule.why}\n${rule.resource} ${JSON.stringify(rule.segment)} {\n  policy = ${JSON.stringify(rule.policy)}\n}\n`).join("");
}

/** A UUID-shaped, stable AccessorID for `name` (Consul requires UUIDs for caller-chosen IDs). */
export function stableAccessorId(name: string): string {
  const hex = createHash("sha256").update(`meshwork consul token: ${name}`).digest("hex");
  // Version 8 (custom) and the RFC 4122 variant, so it parses as a UUID anywhere.
  const variant = ((Number.parseInt(hex[16] ?? "0", 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export function consulAclPlan(): AclPlan {
  const agentRules: AclRule[] = [
    { resource: "node", segment: CONSUL_NODE_NAME, policy: "write", why: "the agent keeps its own node in the catalog" },
    { resource: "service_prefix", segment: "", policy: "read", why: "the agent syncs the services registered on it" },
  ];
  return {
    comment: "Generated by `npm run consul:acl` from deploy/consul/acl-policies.ts and deploy/call-graph.ts. Do not edit by hand.",
    agent: {
      node: CONSUL_NODE_NAME,
      accessorId: stableAccessorId("agent"),
      description: `meshwork: the Consul agent on node ${CONSUL_NODE_NAME}`,
      policy: { name: "meshwork-agent", description: "The Consul agent's own token: its node, and reading the services on it.", rules: renderRules(agentRules) },
    },
    services: APP_SERVICES.map((service) => ({
      service,
      accessorId: stableAccessorId(service),
      description: `meshwork: ${service}`,
      policy: {
        name: `meshwork-${service}`,
        description: `${service}: registers only itself, discovers only what it calls, reads only its own live settings.`,
        rules: renderRules(serviceRules(service)),
      },
    })),
  };
}
