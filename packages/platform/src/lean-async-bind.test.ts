/**
 * The lean AsyncResource bind does what Node's does: each behaviour is
 * checked on Node's own bind and on the lean one, side by side.
 */
import assert from "node:assert/strict";
import { AsyncLocalStorage, AsyncResource, executionAsyncId, triggerAsyncId } from "node:async_hooks";
import { describe, test } from "vitest";
import { adoptLeanAsyncBind, hasLeanAsyncBind, nodeAsyncBind } from "./lean-async-bind.js";

adoptLeanAsyncBind();
const lean = AsyncResource.prototype.bind;

type Bind = typeof AsyncResource.prototype.bind;
const binds: ReadonlyArray<readonly [string, Bind]> = [
  ["Node's bind", nodeAsyncBind],
  ["the lean bind", lean],
];
const bindWith = <F extends (...args: never[]) => unknown>(bind: Bind, resource: AsyncResource, fn: F, thisArg?: unknown) =>
  Reflect.apply(bind, resource, [fn, thisArg]) as F & { asyncResource: AsyncResource };

test("on this Node the process gets the lean bind, once", () => {
  assert.equal(adoptLeanAsyncBind(), true);
  assert.equal(hasLeanAsyncBind(), true);
  assert.notEqual(lean, nodeAsyncBind);
  assert.equal(adoptLeanAsyncBind(), true);
  assert.equal(AsyncResource.prototype.bind, lean, "a second call changes nothing");
});

describe.each(binds)("%s", (_, bind) => {
  test("runs the callback in the resource's async scope, with the store it was bound under", () => {
    const storage = new AsyncLocalStorage<string>();
    const resource = storage.run("bound here", () => new AsyncResource("Test"));
    const bound = bindWith(bind, resource, () => ({ id: executionAsyncId(), trigger: triggerAsyncId(), store: storage.getStore() }));
    const seen = storage.run("called here", bound);
    assert.deepEqual(seen, { id: resource.asyncId(), trigger: resource.triggerAsyncId(), store: "bound here" });
  });

  test("passes the arguments and the answer through, and a throw out", () => {
    const resource = new AsyncResource("Test");
    const bound = bindWith(bind, resource, (a: number, b: number) => a + b);
    assert.equal(bound(2, 3), 5);
    const failing = bindWith(bind, resource, () => {
      throw new RangeError("from the callback");
    });
    assert.throws(() => failing(), { name: "RangeError", message: "from the callback" });
  });

  test("without thisArg the callback gets the bound function's own `this`; with one, always that", () => {
    const resource = new AsyncResource("Test");
    function who(this: unknown) {
      return this;
    }
    const holder = { method: bindWith(bind, resource, who) };
    assert.equal(holder.method(), holder);
    const fixed = { name: "fixed" };
    const other = { method: bindWith(bind, resource, who, fixed) };
    assert.equal(other.method(), fixed);
  });

  test("has the callback's length and one enumerable property, asyncResource, that reads and writes the resource", () => {
    const resource = new AsyncResource("Test");
    const bound = bindWith(bind, resource, (_a: number, _b: number, _c: number) => undefined);
    assert.equal(bound.length, 3);
    assert.deepEqual(Object.keys(bound), ["asyncResource"]);
    assert.equal(bound.asyncResource, resource);
    const replacement = new AsyncResource("Other");
    bound.asyncResource = replacement;
    assert.equal(bound.asyncResource, replacement);
    // Replacing the property's value does not move the callback to the other resource, in either bind.
    assert.equal(bindWith(bind, resource, () => executionAsyncId())(), resource.asyncId());
  });

  test("refuses a callback that is not a function with Node's error", () => {
    assert.throws(() => Reflect.apply(bind, new AsyncResource("Test"), ["not a function"]), { name: "TypeError", code: "ERR_INVALID_ARG_TYPE" });
  });
});

test("AsyncResource.bind (static) goes through the lean bind, and every bound function shares one getter", () => {
  const bound = AsyncResource.bind(() => executionAsyncId()) as (() => number) & { asyncResource: AsyncResource };
  assert.equal(bound(), bound.asyncResource.asyncId());
  assert.ok(
    Object.getOwnPropertyDescriptor(bound, "asyncResource")?.get ===
      Object.getOwnPropertyDescriptor(
        AsyncResource.bind(() => 0),
        "asyncResource",
      )?.get,
    "one getter shared by every bound function",
  );
});
