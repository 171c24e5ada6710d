import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { isDatabaseUnavailable } from "./database-errors.js";

describe("which database errors mean 'not now'", () => {
  test("a server shutting down, starting up, or a cut connection is unavailability", () => {
    const sqlState = (code: string) => Object.assign(new Error("x"), { code });
    assert.ok(isDatabaseUnavailable(sqlState("57P01")), "admin_shutdown");
    assert.ok(isDatabaseUnavailable(sqlState("57P03")), "cannot_connect_now");
    assert.ok(isDatabaseUnavailable(sqlState("08006")), "connection_failure");
    assert.ok(isDatabaseUnavailable(sqlState("ECONNREFUSED")));
    assert.ok(isDatabaseUnavailable(new Error("BEGIN; - Connection terminated unexpectedly")), "knex prefixes the statement");
    assert.ok(isDatabaseUnavailable(Object.assign(new Error("Knex: Timeout acquiring a connection. The pool is probably full."), { name: "KnexTimeoutError" })));
  });

  test("a broken rule or a bug is not", () => {
    const sqlState = (code: string) => Object.assign(new Error("x"), { code });
    assert.equal(isDatabaseUnavailable(sqlState("23505")), false, "unique_violation");
    assert.equal(isDatabaseUnavailable(sqlState("42P01")), false, "undefined_table");
    assert.equal(isDatabaseUnavailable(new TypeError("cannot read properties of undefined")), false);
    assert.equal(isDatabaseUnavailable(undefined), false);
  });
});
