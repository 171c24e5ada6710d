/**
 * Issue 13, edge bounds: the client address comes from configured trusted
 * proxy networks, never from an entry a client wrote.
 */
import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { clientAddress, parseTrustedProxies } from "./client-address.js";

const NOBODY = parseTrustedProxies("");
const MESH = parseTrustedProxies("10.0.0.0/8, fd00::/8, 192.0.2.7");

describe("client address from trusted proxy networks", () => {
  test("with no trusted proxy (the default), X-Forwarded-For is ignored: a caller cannot pick its own address", () => {
    assert.equal(clientAddress("203.0.113.7", "198.51.100.1", NOBODY), "203.0.113.7");
    assert.equal(clientAddress("::ffff:203.0.113.7", ["198.51.100.1", "10.0.0.1"], NOBODY), "203.0.113.7");
  });

  test("an untrusted peer's X-Forwarded-For is ignored even when it names trusted proxies", () => {
    assert.equal(clientAddress("203.0.113.7", "198.51.100.1, 10.0.0.5", MESH), "203.0.113.7");
  });

  test("behind trusted proxies the first untrusted hop from the right is the client, not what the client prepended", () => {
    // The client wrote "1.1.1.1" itself; the ingress (10.0.0.9) appended the address it saw.
    assert.equal(clientAddress("10.0.0.2", "1.1.1.1, 203.0.113.7, 10.0.0.9", MESH), "203.0.113.7");
    assert.equal(clientAddress("::ffff:10.0.0.2", ["1.1.1.1", "198.51.100.9, fd00::1"], MESH), "198.51.100.9");
    assert.equal(clientAddress("fd00::2", "2001:db8::5", MESH), "2001:db8::5");
    assert.equal(clientAddress("192.0.2.7", "203.0.113.8", MESH), "203.0.113.8");
  });

  test("a trusted proxy's request without the header, or with a non-address entry, keys on the last trusted hop", () => {
    assert.equal(clientAddress("10.0.0.2", undefined, MESH), "10.0.0.2");
    assert.equal(clientAddress("10.0.0.2", "203.0.113.7, unknown", MESH), "10.0.0.2");
    assert.equal(clientAddress("10.0.0.2", "203.0.113.7, 10.0.0.3, 198.51.100.1:4711", MESH), "10.0.0.2");
    assert.equal(clientAddress("10.0.0.2", "10.0.0.4, 10.0.0.3", MESH), "10.0.0.4");
  });

  test("a bad network stops start-up naming the setting and the entry", () => {
    for (const bad of ["10.0.0.0/33", "fd00::/129", "10.0.0/8", "example.com", "10.0.0.0/8/1", "10.0.0.0/-1", "10.0.0.0/"]) {
      assert.throws(() => parseTrustedProxies(`192.0.2.1, ${bad}`), new RegExp(`GATEWAY_TRUSTED_PROXIES: "${bad.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}"`), bad);
    }
    assert.equal(parseTrustedProxies(" 10.1.0.0/16 ,,").has("10.1.255.1"), true);
    assert.equal(parseTrustedProxies("10.1.0.0/16").has("10.2.0.1"), false);
  });
});
