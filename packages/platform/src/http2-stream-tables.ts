/**
 * Node keeps an HTTP/2 session's streams in a `Map` (id → stream) and its
 * not-yet-numbered streams in a `Set`: one insert and one delete per stream,
 * for as long as the connection lives. On Node 20, 22 and 24 (V8 11 to 13)
 * that shape makes a busy connection promote nearly every stream to the old
 * generation. When a `Map` or `Set` outgrows or compacts its hash table, the
 * table it replaces keeps a link to the new one and keeps its entries; once
 * the current table sits in the old generation (a full collection while the
 * connection is busy puts it there, and every long-running server has them),
 * that dead table holds the new young table alive through every scavenge,
 * the new table is promoted in turn, and so is each stream it reaches. A
 * plain object's number-keyed elements and an array replace their stores
 * without such a link, and promote nothing that has died.
 *
 * Measured here (2 cores, Node 20.20.2, 16 streams in flight, after one full
 * collection): a bare `node:http2` server promoted 1,343 KB per scavenge
 * with Node's tables and 76–99 KB with these (its GC pauses 182 ms against
 * 46 ms in 4 s); the catalog on the platform host paused 5 µs per call for
 * GC against bare grpc-js's 10 (`npm run bench -- host-vs-bare`).
 *
 * Why by hand: the fix belongs in Node (an object or array for the streams),
 * no library offers it, and neither grpc-js nor Node has a hook for it. So
 * adoptStreamTables() swaps the two collections of a new session for the
 * ones below, which do what Node's code asks of them (get, set, delete, size
 * and forEach; add, delete, size and forEach: the same calls on Node 20, 22
 * and 24, read in their lib/internal/http2/core.js). It does so only on
 * those Node majors, only while both collections are empty Node ones, and
 * otherwise leaves the session as it is (a newer Node serves as before).
 */
import type { ClientHttp2Session, Http2Server, Http2Session } from "node:http2";
import { createRequire } from "node:module";
import type { Server } from "@grpc/grpc-js";

/** Node majors whose http2 core was read for the calls above. */
const CHECKED_NODE_MAJORS: ReadonlySet<number> = new Set([20, 22, 24]);
/** Whether this process runs on one of them: decided once, not per connection. */
const ON_CHECKED_NODE = CHECKED_NODE_MAJORS.has(Number(process.versions.node.split(".")[0]));

const adopted = new WeakSet<Http2Session>();

/** The streams of a session by id (`session[kState].streams`): a Map to Node, a plain object's elements underneath. */
export class StreamTable<T> {
  // Stream ids are positive odd (client) or even (server) integers below
  // 2^31: they live in the object's elements, a hash table (sparse ids)
  // that V8 rebuilds without linking the old one to the new.
  #byId: Record<number, T> = Object.create(null) as Record<number, T>;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  get(id: number): T | undefined {
    return this.#byId[id];
  }

  has(id: number): boolean {
    return this.#byId[id] !== undefined;
  }

  set(id: number, stream: T): this {
    if (this.#byId[id] === undefined) this.#size++;
    this.#byId[id] = stream;
    return this;
  }

  delete(id: number): boolean {
    if (this.#byId[id] === undefined) return false;
    delete this.#byId[id];
    this.#size--;
    return true;
  }

  /** Over the streams there are now; one deleted meanwhile (destroy deletes each) is skipped. */
  forEach(visit: (stream: T, id: number, table: this) => void): void {
    for (const key of Object.keys(this.#byId)) {
      const stream = this.#byId[Number(key)];
      if (stream !== undefined) visit(stream, Number(key), this);
    }
  }
}

/**
 * A Set to its user, an array underneath, for the few members a connection
 * holds at a time: a session's streams that have no id yet
 * (`session[kState].pendingStreams`; a stream is pending from its
 * construction to its first headers, a server's for no time at all, a
 * client's until the session connects) and a grpc-js transport's calls in
 * flight (`activeCalls`). A scan finds one of a handful faster than a hash.
 */
export class ArraySet<T> {
  #members: T[] = [];

  get size(): number {
    return this.#members.length;
  }

  has(member: T): boolean {
    return this.#members.includes(member);
  }

  add(member: T): this {
    if (!this.#members.includes(member)) this.#members.push(member);
    return this;
  }

  delete(member: T): boolean {
    const index = this.#members.indexOf(member);
    if (index < 0) return false;
    // Order does not matter to Node or grpc-js: the last one fills the gap, and pop() clears its slot.
    const last = this.#members.pop() as T;
    if (index < this.#members.length) this.#members[index] = last;
    return true;
  }

  /** Over a copy: the visit may delete (destroy and close do). */
  forEach(visit: (member: T, again: T, set: this) => void): void {
    for (const member of [...this.#members]) visit(member, member, this);
  }

  /** Over a copy, as forEach (grpc-js goes over its calls with for...of when the connection drops, and each call leaves). */
  [Symbol.iterator](): Iterator<T> {
    return [...this.#members][Symbol.iterator]();
  }
}

interface SessionState {
  streams: unknown;
  pendingStreams: unknown;
}

function stateOf(session: Http2Session): SessionState | undefined {
  const key = Object.getOwnPropertySymbols(session).find((symbol) => symbol.description === "state");
  const state = key === undefined ? undefined : (session as unknown as Record<symbol, unknown>)[key];
  return typeof state === "object" && state !== null && "streams" in state && "pendingStreams" in state ? (state as SessionState) : undefined;
}

/** Node's own collection of that kind, still empty. Node's are primordials' SafeMap and SafeSet, which `instanceof` does not see as Map and Set. */
function isEmptyNodeCollection(value: unknown, kind: "Map" | "Set"): boolean {
  return Object.prototype.toString.call(value) === `[object ${kind}]` && (value as { size: number }).size === 0;
}

/**
 * Gives a new session (before its first stream) the tables above instead of
 * Node's. True when it did, or had already; false where it would not (another
 * Node major, another session layout, a session with streams already).
 */
export function adoptStreamTables(session: Http2Session): boolean {
  if (adopted.has(session)) return true;
  if (!ON_CHECKED_NODE) return false;
  const state = stateOf(session);
  if (!state || !isEmptyNodeCollection(state.streams, "Map") || !isEmptyNodeCollection(state.pendingStreams, "Set")) return false;
  state.streams = new StreamTable();
  state.pendingStreams = new ArraySet();
  adopted.add(session);
  return true;
}

/** Whether adoptStreamTables() gave `session` these tables. */
export function hasStreamTables(session: Http2Session): boolean {
  return adopted.has(session);
}

/**
 * Every session a grpc-js server accepts from now on gets these tables.
 * grpc-js makes its HTTP/2 servers inside bindAsync and offers no hook, so
 * this reads them from its (private) `http2Servers` map: call it after
 * binding. False when that map is not there (another grpc-js layout): the
 * server then serves as before, on Node's tables.
 */
export function adoptStreamTablesOf(server: Server): boolean {
  const http2Servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(http2Servers instanceof Map) || http2Servers.size === 0) return false;
  for (const http2Server of http2Servers.keys() as Iterable<Http2Server>) {
    if (typeof http2Server?.on !== "function") return false;
  }
  for (const http2Server of http2Servers.keys() as Iterable<Http2Server>) {
    http2Server.on("session", (session: Http2Session) => void adoptStreamTables(session));
  }
  return true;
}

/** A grpc-js transport (transport.ts's Http2Transport), as far as this file touches it. */
interface GrpcTransport {
  session?: unknown;
  activeCalls?: unknown;
}

/** On grpc-js's wrapped connector: how many connections got the tables (global, so that every copy of this module counts the same). */
const CLIENT_TABLES = Symbol.for("meshwork.grpcClientTables");
type ConnectorPrototype = { connect?: unknown; [CLIENT_TABLES]?: { adopted: number } };

/**
 * Every connection a grpc-js client opens from now on, in this process: its
 * HTTP/2 session gets the tables above, and its transport's calls in flight
 * (`activeCalls`, one add and one delete per call in a Set that lives as
 * long as the connection: the same shape as Node's tables) an ArraySet.
 * Measured here (2 cores, a grpc-js client, 16 calls in flight to the
 * platform catalog, after one full collection, with the lean bind of
 * lean-async-bind.ts): 2.4 MB promoted per scavenge with either of the two
 * left as it was, 32 KB with both replaced.
 *
 * grpc-js opens connections in its Http2SubchannelConnector and offers no
 * hook, so this wraps that (private) class's connect(): the transport it
 * resolves has not carried a call yet. Once per process; false when grpc-js's
 * layout is not the one read (1.14): clients then run as before.
 */
export function adoptGrpcClientTables(): boolean {
  // Every createClient() asks: the answer is worked out once.
  clientTables ??= wrapGrpcConnector();
  return clientTables;
}

let clientTables: boolean | undefined;

/** The connector's prototype, once wrapped (here or by another copy of this module). */
let wrapped: ConnectorPrototype | undefined;

function wrapGrpcConnector(): boolean {
  if (!ON_CHECKED_NODE) return false;
  let connector: { prototype: ConnectorPrototype } | undefined;
  try {
    connector = createRequire(import.meta.url)("@grpc/grpc-js/build/src/transport.js").Http2SubchannelConnector;
  } catch {
    return false;
  }
  const prototype = connector?.prototype;
  if (prototype?.[CLIENT_TABLES]) {
    wrapped = prototype;
    return true;
  }
  if (typeof prototype?.connect !== "function") return false;
  const connect = prototype.connect as (...args: unknown[]) => Promise<GrpcTransport>;
  const count = { adopted: 0 };
  prototype.connect = async function (this: unknown, ...args: unknown[]): Promise<GrpcTransport> {
    const transport = await connect.apply(this, args);
    if (adoptTransportTables(transport)) count.adopted++;
    return transport;
  };
  prototype[CLIENT_TABLES] = count;
  wrapped = prototype;
  return true;
}

function adoptTransportTables(transport: GrpcTransport): boolean {
  const session = transport?.session as ClientHttp2Session | undefined;
  if (typeof session?.request !== "function" || !adoptStreamTables(session)) return false;
  if (transport.activeCalls instanceof Set && transport.activeCalls.size === 0) transport.activeCalls = new ArraySet();
  return true;
}

/** How many grpc-js connections have been given the tables, in this process. */
export function grpcClientTransportsAdopted(): number {
  return wrapped?.[CLIENT_TABLES]?.adopted ?? 0;
}
