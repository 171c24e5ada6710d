/**
 * Service discovery, as a port. A service registers itself where it serves and
 * clients resolve the healthy instances of the services they call. Adapters:
 * static addresses (static.ts) and Consul (consul.ts).
 */

/** One running instance of a service. */
export interface Instance {
  /** Unique id of the instance, stable for its lifetime (e.g. "catalog-127.0.0.1-50052"). */
  readonly id: string;
  /** Host (IP or name) it serves gRPC on. */
  readonly host: string;
  /** Port it serves gRPC on. */
  readonly port: number;
}

/** What a service tells discovery about itself when it starts serving. */
export interface Registration {
  /** Logical service name, e.g. "catalog". */
  readonly name: string;
  /** Unique instance id. */
  readonly id: string;
  /** Address other instances can reach it on. */
  readonly host: string;
  readonly port: number;
  /** Free-form tags, e.g. the version. */
  readonly tags?: readonly string[];
}

/** Registers this process's instance; the handle deregisters it on shutdown. */
export interface Registry {
  register(registration: Registration): Promise<RegistrationHandle>;
}

export interface RegistrationHandle {
  /** Removes the instance from discovery. Safe to call more than once. */
  deregister(): Promise<void>;
}

/**
 * A live view of the passing instances of one service. `instances()` never
 * blocks: it answers the latest known list (possibly empty before the first
 * answer). `ready()` resolves once the first list is known.
 */
export interface InstanceWatch {
  instances(): readonly Instance[];
  ready(): Promise<void>;
  /** Called with the new list whenever it changes; returns an unsubscribe function. */
  onChange(listener: (instances: readonly Instance[]) => void): () => void;
  /** Stops watching. */
  close(): void;
}

export interface Resolver {
  /** Starts (or shares) a watch on the passing instances of `service`. */
  watch(service: string): InstanceWatch;
  /** Stops every watch. */
  close(): void;
}

/** Formats an instance as the "host:port" string gRPC dials. */
export function instanceAddress(instance: Pick<Instance, "host" | "port">): string {
  return instance.host.includes(":") && !instance.host.startsWith("[") ? `[${instance.host}]:${instance.port}` : `${instance.host}:${instance.port}`;
}
