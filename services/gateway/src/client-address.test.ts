import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { acceptRequestId } from "@meshwork/platform";
import { rateLimitKeyOf } from "./client-address.js";
import { requestIdFrom } from "./request-id.js";

describe("rate-limit key of a client address", () => {
  test("IPv4-mapped IPv6 is the IPv4 address; IPv6 counts per /64", () => {
    assert.equal(rateLimitKeyOf("::ffff:127.0.0.1"), "127.0.0.1");
    assert.equal(rateLimitKeyOf("2001:db8:0:1::5"), "2001:db8:0:1::/64");
    assert.equal(rateLimitKeyOf("2001:DB8:0:1:ffff::9"), "2001:db8:0:1::/64");
    assert.equal(rateLimitKeyOf("::1"), "0:0:0:0::/64");
    assert.equal(rateLimitKeyOf("unknown"), "unknown");
  });
});

describe("request id at the edge", () => {
  test("a well-formed caller id is kept", () => {
    assert.equal(requestIdFrom(new Headers({ "x-request-id": "checkout-42.a:b" })), "checkout-42.a:b");
  });

  test("a missing, malformed, too long or repeated id is replaced by a fresh one, as the backends would", () => {
    const fresh = /^[0-9a-f-]{36}$/;
    const repeated = new Headers();
    repeated.append("x-request-id", "a");
    repeated.append("x-request-id", "b");
    for (const headers of [new Headers(), new Headers({ "x-request-id": "bad id\u00e9" }), new Headers({ "x-request-id": "x".repeat(129) }), repeated]) {
      const id = requestIdFrom(headers);
      assert.match(id, fresh);
      assert.equal(acceptRequestId(id), id, "the new id passes the platform's rule downstream");
    }
  });
});
