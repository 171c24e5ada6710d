/**
 * Discovery from a fixed list of addresses, for local runs and compose files
 * without Consul. Nothing registers anywhere: the addresses are whatever the
 * operator configured, and they never change while the process runs.
 */
import type { Instance, InstanceWatch, RegistrationHandle, Registry, Resolver } from "./ports.js";

export interface StaticDiscovery {
  readonly registry: Registry;
  readonly resolver: Resolver;
}

/** A parsed "host:port"; an IPv6 host is kept without its brackets. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/**
 * Parses one "host:port" (or "[v6]:port") address; returns undefined when it
 * is not one. An unbracketed IPv6 address is refused because its last colon
 * cannot be told apart from the port separator.
 */
export function parseAddress(text: string): HostPort | undefined {
  const bracketed = /^\[([0-9A-Fa-f:.]+(?:%[\w.-]+)?)\]:(\d{1,5})$/.exec(text);
  const plain = /^([A-Za-z0-9._-]+):(\d{1,5})$/.exec(text);
  const match = bracketed ?? plain;
  if (match === null) return undefined;
  const host = match[1];
  const port = Number(match[2]);
  if (host === undefined || host === "" || !Number.isInteger(port) || port < 1 || port > 65535) {
    return undefined;
  }
  return { host, port };
}

/**
 * Parses "host:port,host:port" (spaces around entries allowed). Blank text is
 * an empty list; any bad entry, including an empty one between commas, throws
 * an Error that names `name` and the entry so the operator can fix it.
 */
export function parseAddressList(name: string, text: string): string[] {
  if (text.trim() === "") return [];
  return text.split(",").map((raw, position) => {
    const entry = raw.trim();
    if (parseAddress(entry) === undefined) {
      throw new Error(`${name}: entry ${position + 1} "${entry}" is not a host:port address (IPv6 as [addr]:port, port 1-65535)`);
    }
    return entry;
  });
}

function toInstances(service: string, addresses: readonly string[]): Instance[] {
  return addresses.map((address) => {
    const parsed = parseAddress(address.trim());
    if (parsed === undefined) {
      throw new Error(`static discovery for "${service}": "${address}" is not a host:port address`);
    }
    return { id: `${service}-${parsed.host}-${parsed.port}`, host: parsed.host, port: parsed.port };
  });
}

/**
 * `addresses` maps a service name to its "host:port" list. Bad addresses throw
 * here, at start-up, rather than on the first call.
 */
export function createStaticDiscovery(addresses: Record<string, string[]>): StaticDiscovery {
  const table = new Map<string, readonly Instance[]>();
  for (const [service, list] of Object.entries(addresses)) {
    table.set(service, Object.freeze(toInstances(service, list)));
  }

  const registry: Registry = {
    register() {
      const handle: RegistrationHandle = { deregister: () => Promise.resolve() };
      return Promise.resolve(handle);
    },
  };

  const open = new Set<InstanceWatch>();

  const resolver: Resolver = {
    watch(service) {
      const instances = table.get(service) ?? Object.freeze([]);
      const watch: InstanceWatch = {
        instances: () => instances,
        ready: () => Promise.resolve(),
        // The list never changes, so there is nothing to ever call.
        onChange: () => () => {},
        close: () => {
          open.delete(watch);
        },
      };
      open.add(watch);
      return watch;
    },
    close() {
      for (const watch of [...open]) watch.close();
    },
  };

  return { registry, resolver };
}
