/**
 * Every `http2` client request (grpc-js, Connect, plain `node:http2`) calls
 * `AsyncResource.prototype.bind` once: `ClientHttp2Session.request()` binds
 * its connect callback to a new `AsyncResource('PendingRequest')`. Node's
 * `bind` (20, 22 and 24 alike) gives each bound function an `asyncResource`
 * accessor whose getter and setter are new closures on every call. An
 * accessor pair is part of an object's hidden class, so every call makes a
 * new hidden class, which V8 allocates in the old generation, and that class
 * holds the closures, their context, the resource and the callback, and
 * through the callback the request's whole stream. A dead object in the old
 * generation is still a root for scavenges until the next full collection,
 * so every request a client made between two full collections is promoted.
 *
 * Measured here (2 cores, a plain `node:http2` client, one request at a
 * time, after one full collection): 1.4–2.0 MB promoted per scavenge with
 * Node's `bind`, 0 with this one (and 19,234 requests in 4 s against 8,600,
 * on a machine busy with other work). http2-promotion.int.test.ts measures
 * the old generation's growth: about 3.2 KB per request against 0.1–0.2.
 * Without HTTP/2, 20,000 calls of `new AsyncResource(...).bind(fn)`: Node
 * 20 promoted 0.7 MB per scavenge, Node 24 9 MB; with this bind, nothing.
 *
 * Why by hand: the fix belongs in Node (one shared getter and setter), no
 * library offers it, and the call is inside Node's http2 code, so the only
 * place to change it is the prototype. adoptLeanAsyncBind() replaces
 * `bind` with one that does the same (the callback runs in the resource's
 * scope with the same arguments and `this`; `length` is the callback's;
 * `asyncResource` reads and writes the resource, with Node's DEP0172
 * deprecation warning) but keeps the resource in a symbol-keyed property and
 * shares one getter and one setter across all bound functions. It does so
 * only on the Node majors whose `bind` was read (20, 22, 24) and only while
 * `bind` is still Node's own; otherwise it leaves Node as it is.
 */
import { AsyncResource } from "node:async_hooks";
import { deprecate } from "node:util";

/** Node majors whose AsyncResource.prototype.bind was read for the behaviour above. */
const CHECKED_NODE_MAJORS: ReadonlySet<number> = new Set([20, 22, 24]);

/** On a lean bind: the Node bind it replaced (global, so that a second copy of this module finds it). */
const REPLACED = Symbol.for("meshwork.leanAsyncBind.replaced");
type NodeBind = typeof AsyncResource.prototype.bind;
const inPlace = AsyncResource.prototype.bind as NodeBind & { [REPLACED]?: NodeBind };
/** Node's own bind: the one in place, or the one a lean bind replaced. */
export const nodeAsyncBind: NodeBind = inPlace[REPLACED] ?? inPlace;
/** Whether it is Node's own and not something loaded earlier put there (Node's builtins print their source). */
const NODES_OWN = Function.prototype.toString.call(nodeAsyncBind).includes("ObjectDefineProperties(bound");
const RESOURCE = Symbol("meshwork.asyncResource");
const DEPRECATION = "The asyncResource property on bound functions is deprecated";

interface Bound {
  [RESOURCE]: AsyncResource;
}

// One getter and one setter for every bound function: their hidden classes are shared.
const getResource = deprecate(
  function (this: Bound) {
    return this[RESOURCE];
  },
  DEPRECATION,
  "DEP0172",
);
const setResource = deprecate(
  function (this: Bound, resource: AsyncResource) {
    this[RESOURCE] = resource;
  },
  DEPRECATION,
  "DEP0172",
);

type Callback = (this: unknown, ...args: unknown[]) => unknown;

function leanBind(this: AsyncResource, fn: Callback, thisArg?: unknown): Callback {
  // Node's own validation and error (ERR_INVALID_ARG_TYPE) for anything but a function.
  if (typeof fn !== "function") return Reflect.apply(nodeAsyncBind, this, [fn, thisArg]) as Callback;
  const resource = this;
  let bound: Callback;
  if (thisArg === undefined) {
    // As Node's: the bound function's own `this` becomes the callback's, and runInAsyncScope is looked up per call.
    bound = function (this: unknown, ...args: unknown[]) {
      return resource.runInAsyncScope(fn, this, ...args);
    };
  } else {
    bound = resource.runInAsyncScope.bind(resource, fn, thisArg) as Callback;
  }
  Object.defineProperties(bound, {
    length: { configurable: true, enumerable: false, value: fn.length, writable: false },
    [RESOURCE]: { configurable: true, enumerable: false, value: resource, writable: true },
    asyncResource: { configurable: true, enumerable: true, get: getResource, set: setResource },
  });
  return bound;
}

/** Whether this process's AsyncResource.prototype.bind is a lean one (from this copy of the module or another). */
export function hasLeanAsyncBind(): boolean {
  return REPLACED in AsyncResource.prototype.bind;
}

/**
 * Gives this process the lean bind (once; later calls only report). Returns
 * whether the process has it: false on another Node major, or when something
 * else already replaced Node's bind.
 */
export function adoptLeanAsyncBind(): boolean {
  if (hasLeanAsyncBind()) return true;
  if (!CHECKED_NODE_MAJORS.has(Number(process.versions.node.split(".")[0]))) return false;
  if (!NODES_OWN || AsyncResource.prototype.bind !== nodeAsyncBind) return false;
  Object.defineProperty(leanBind, REPLACED, { value: nodeAsyncBind });
  AsyncResource.prototype.bind = leanBind as unknown as NodeBind;
  return true;
}
