/**
 * Discovery through Consul: each instance registers with its local agent
 * under a gRPC health check, and clients follow the passing instances of a
 * service with blocking queries on /v1/health/service/:name?passing=true:
 * an instance whose check is critical or warning (a new one starts critical)
 * is never handed to a client.
 *
 * With Consul's ACLs on, every call carries the service's token. A refused
 * registration fails start-up with an error naming the missing permission;
 * a refused or ACL-filtered health query is logged as an error saying so
 * (once, until it heals), never as a silent empty list.
 */
import { z } from "zod";
import type { Logger } from "../logger.js";
import { ConsulAclError, consulErrorStatus, createConsulClient, describeAclRefusal, describeConsulError, startBlockingWatch, type BlockingWatch, type ConsulConnection } from "./consul-client.js";
import { instanceAddress, type Instance, type InstanceWatch, type Registration, type RegistrationHandle, type Registry, type Resolver } from "./ports.js";

export type { ConsulConnection } from "./consul-client.js";

export interface ConsulDiscoveryOptions {
  readonly consul: ConsulConnection;
  readonly log: Logger;
  /** How often the agent probes the gRPC health service. Default "10s". */
  readonly checkInterval?: string;
  /** How long one probe may take. Default "5s". */
  readonly checkTimeout?: string;
  /** The agent removes an instance whose check stayed critical this long. Default "1m". */
  readonly deregisterAfter?: string;
  /** Longest time Consul holds one blocking query. Default "30s". */
  readonly watchWait?: string;
  /** Upper bound of the retry backoff after failed queries, in ms. Default 30000. */
  readonly retryMaxMs?: number;
}

export interface ConsulDiscovery {
  readonly registry: Registry;
  readonly resolver: Resolver;
}

// Only the fields discovery needs; Consul sends many more.
const healthEntrySchema = z.object({
  Node: z.object({ Address: z.string().optional() }).optional(),
  Service: z.object({
    ID: z.string().min(1),
    Address: z.string().optional(),
    Port: z.number().int().min(1).max(65535),
  }),
});

function compareInstances(a: Instance, b: Instance): number {
  const byText = (x: string, y: string): number => (x < y ? -1 : x > y ? 1 : 0);
  return byText(a.host, b.host) || a.port - b.port || byText(a.id, b.id);
}

function sameInstances(a: readonly Instance[], b: readonly Instance[]): boolean {
  return (
    a.length === b.length &&
    a.every((instance, i) => {
      const other = b[i];
      return other !== undefined && other.id === instance.id && other.host === instance.host && other.port === instance.port;
    })
  );
}

interface SharedWatch {
  instances: readonly Instance[];
  readonly ready: Promise<void>;
  readonly listeners: Set<(instances: readonly Instance[]) => void>;
  refs: number;
  stop(): void;
}

export function createConsulDiscovery(options: ConsulDiscoveryOptions): ConsulDiscovery {
  const { log } = options;
  const checkInterval = options.checkInterval ?? "10s";
  const checkTimeout = options.checkTimeout ?? "5s";
  const deregisterAfter = options.deregisterAfter ?? "1m";
  const watchWait = options.watchWait ?? "30s";
  const retryMaxMs = options.retryMaxMs ?? 30_000;

  // Separate clients so that closing the resolver (which drops its sockets)
  // cannot break a deregistration still to come at shutdown.
  const registryClient = createConsulClient(options.consul);
  const resolverClient = createConsulClient(options.consul);

  const registry: Registry = {
    async register(registration: Registration): Promise<RegistrationHandle> {
      const address = instanceAddress(registration);
      const refused = (error: unknown, action: string): unknown => {
        const why = describeAclRefusal(error, options.consul);
        return why === undefined
          ? error
          : new ConsulAclError(`cannot ${action} "${registration.name}" instance ${registration.id} in Consul: ${why}; it needs service "${registration.name}" { policy = "write" }`, { cause: error });
      };
      await registryClient.agent.service
        .register({
          name: registration.name,
          id: registration.id,
          address: registration.host,
          port: registration.port,
          tags: [...(registration.tags ?? [])],
          check: {
            name: `gRPC health of ${registration.id}`,
            grpc: address,
            interval: checkInterval,
            timeout: checkTimeout,
            deregistercriticalserviceafter: deregisterAfter,
          },
        })
        .catch((error: unknown) => {
          throw refused(error, "register");
        });
      log.info({ service: registration.name, instanceId: registration.id, address }, "registered in consul");

      let deregistering: Promise<void> | undefined;
      const deregisterOnce = async (): Promise<void> => {
        try {
          await registryClient.agent.service.deregister(registration.id);
        } catch (error) {
          // The agent already forgot it (reaped, restarted): the goal is met.
          if (consulErrorStatus(error) !== 404) throw refused(error, "deregister");
        }
        log.info({ service: registration.name, instanceId: registration.id }, "deregistered from consul");
      };
      return {
        deregister() {
          // A failed attempt may be retried; a finished or running one is shared.
          deregistering ??= deregisterOnce().catch((error: unknown) => {
            deregistering = undefined;
            throw error;
          });
          return deregistering;
        },
      };
    },
  };

  const watches = new Map<string, SharedWatch>();

  function toInstances(service: string, data: unknown): Instance[] | undefined {
    if (!Array.isArray(data)) {
      log.warn({ service }, "consul health answer is not a list; keeping the last known instances");
      return undefined;
    }
    const instances: Instance[] = [];
    for (const entry of data) {
      const parsed = healthEntrySchema.safeParse(entry);
      if (!parsed.success) {
        log.warn({ service, error: z.prettifyError(parsed.error) }, "skipping malformed consul health entry");
        continue;
      }
      const { Service, Node } = parsed.data;
      // An empty service address means "the node's address", as Consul documents.
      const host = Service.Address !== undefined && Service.Address !== "" ? Service.Address : Node?.Address;
      if (host === undefined || host === "") {
        log.warn({ service, instanceId: Service.ID }, "skipping consul health entry without an address");
        continue;
      }
      instances.push({ id: Service.ID, host, port: Service.Port });
    }
    return instances.sort(compareInstances);
  }

  function startShared(service: string): SharedWatch {
    let markReady!: () => void;
    let failReady!: (error: Error) => void;
    const ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failReady = reject;
    });
    // Nobody may be waiting on ready() when the watch closes early.
    ready.catch(() => {});
    let known = false;
    // The ACL problem last logged, so a refusal is an error once, not once per retry.
    let aclProblem: string | undefined;
    const reportAcl = (problem: string | undefined): void => {
      if (problem === aclProblem) return;
      if (problem !== undefined) log.error({ service, instances: shared.instances.length }, problem);
      else log.info({ service }, "consul answers this service's token again");
      aclProblem = problem;
    };

    const shared: SharedWatch = {
      instances: Object.freeze([]),
      ready,
      listeners: new Set(),
      refs: 0,
      stop: () => {
        blocking.stop();
        if (!known) failReady(new Error(`watch on "${service}" closed before Consul answered`));
      },
    };

    const blocking: BlockingWatch = startBlockingWatch({
      client: resolverClient,
      method: resolverClient.health.service,
      // The package's option type is Record<string, string>; health.service
      // only tests `passing` for truthiness.
      options: { service, passing: "true" },
      wait: watchWait,
      retryMaxMs,
      log,
      logContext: { service },
      onData: (data, headers) => {
        // Consul hides what the token may not read rather than refusing: say so.
        reportAcl(
          headers["x-consul-results-filtered-by-acls"] === "true"
            ? `consul hid instances of "${service}" from this service's ACL token (X-Consul-Results-Filtered-By-ACLs): it needs service "${service}" { policy = "read" } and node_prefix "" { policy = "read" }`
            : undefined,
        );
        const next = toInstances(service, data);
        if (next === undefined) return;
        const first = !known;
        known = true;
        if (first) markReady();
        if (sameInstances(shared.instances, next)) {
          if (first) log.info({ service, instances: next.length }, "consul watch ready");
          return;
        }
        shared.instances = Object.freeze(next);
        log.info({ service, instances: next.map(instanceAddress) }, "instances changed");
        for (const listener of [...shared.listeners]) {
          try {
            listener(shared.instances);
          } catch (error) {
            log.error({ service, err: error }, "instance listener failed");
          }
        }
      },
      onError: (error) => {
        const refusal = describeAclRefusal(error, options.consul);
        if (refusal !== undefined) {
          reportAcl(`cannot follow the instances of "${service}": ${refusal}; keeping the last known instances`);
          return;
        }
        log.warn({ service, error: describeConsulError(error), instances: shared.instances.length }, "consul health query failed; keeping the last known instances");
      },
    });
    return shared;
  }

  const resolver: Resolver = {
    watch(service: string): InstanceWatch {
      let shared = watches.get(service);
      if (shared === undefined) {
        shared = startShared(service);
        watches.set(service, shared);
      }
      shared.refs += 1;
      const target = shared;
      const mine = new Set<(instances: readonly Instance[]) => void>();
      let closed = false;
      return {
        instances: () => target.instances,
        ready: () => target.ready,
        onChange(listener) {
          // Wrapped so that one listener added twice can be removed twice.
          const wrapped = (instances: readonly Instance[]): void => listener(instances);
          mine.add(wrapped);
          target.listeners.add(wrapped);
          return () => {
            mine.delete(wrapped);
            target.listeners.delete(wrapped);
          };
        },
        close() {
          if (closed) return;
          closed = true;
          for (const listener of mine) target.listeners.delete(listener);
          mine.clear();
          target.refs -= 1;
          if (target.refs === 0 && watches.get(service) === target) {
            watches.delete(service);
            target.stop();
          }
        },
      };
    },
    close() {
      for (const shared of watches.values()) shared.stop();
      watches.clear();
      resolverClient.destroy();
    },
  };

  return { registry, resolver };
}
