import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { InvalidFieldError } from "./errors.js";
import { Code, errorMapper, isRpcError, notFound } from "./rpc-errors.js";

class MissingThing extends Error {}

const mapped = errorMapper((error) => (error instanceof MissingThing ? notFound(error.message) : error));

describe("errorMapper", () => {
  test("work that succeeds keeps its value", async () => {
    assert.equal(await mapped(async () => 42), 42);
  });

  test("a rejection leaves as the status its service maps it to, an InvalidFieldError as INVALID_ARGUMENT naming the field, anything else unchanged", async () => {
    const missing = await mapped(async () => Promise.reject(new MissingThing("no product P1"))).catch((error: unknown) => error);
    assert.ok(isRpcError(missing, Code.NOT_FOUND));
    assert.equal(missing.message, "no product P1");
    const invalid = await mapped(async () => {
      throw new InvalidFieldError("items[0].quantity", "must be from 1 to 1000");
    }).catch((error: unknown) => error);
    assert.ok(isRpcError(invalid, Code.INVALID_ARGUMENT));
    assert.equal(invalid.field, "items[0].quantity");
    const unknown = new Error("disk on fire");
    assert.equal(await mapped(async () => Promise.reject(unknown)).catch((error: unknown) => error), unknown);
  });

  test("work that throws before returning its promise is mapped the same way, as a rejection", async () => {
    const outcome = mapped((): Promise<never> => {
      throw new MissingThing("no product P2");
    });
    assert.ok(outcome instanceof Promise, "a rejected promise, not a synchronous throw");
    const error = await outcome.catch((caught: unknown) => caught);
    assert.ok(isRpcError(error, Code.NOT_FOUND));
  });
});
