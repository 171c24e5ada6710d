import { createConsulDiscovery } from "./discovery/consul.js";
import type { Registry, Resolver } from "./discovery/ports.js";
import { createStaticDiscovery } from "./discovery/static.js";
import { parseConsulAddress } from "./config.js";
import type { Logger } from "./logger.js";

export interface DiscoveryChoice {
  /** CONSUL_HTTP_ADDR; empty means static addresses. */
  readonly consulAddr: string;
  readonly consulToken: string;
  readonly log: Logger;
  /** Addresses per service name, used when Consul is not configured. */
  readonly staticAddresses?: Record<string, string[]>;
}

export interface Discovery {
  readonly kind: "consul" | "static";
  readonly registry: Registry;
  readonly resolver: Resolver;
  close(): void;
}

/** Consul when an agent address is configured, static addresses otherwise. */
export function createDiscovery(choice: DiscoveryChoice): Discovery {
  if (choice.consulAddr !== "") {
    const address = parseConsulAddress(choice.consulAddr);
    const consul = createConsulDiscovery({
      consul: { ...address, ...(choice.consulToken ? { token: choice.consulToken } : {}) },
      log: choice.log,
    });
    return { kind: "consul", ...consul, close: () => consul.resolver.close() };
  }
  const fixed = createStaticDiscovery(choice.staticAddresses ?? {});
  return { kind: "static", ...fixed, close: () => fixed.resolver.close() };
}
