import { describe, test } from "vitest";
import assert from "node:assert/strict";
import { instanceAddress } from "./ports.js";
import { createStaticDiscovery, parseAddress, parseAddressList } from "./static.js";

describe("parseAddressList", () => {
  test("reads host names, IPv4 and bracketed IPv6 addresses, ignoring spaces around entries", () => {
    assert.deepEqual(parseAddressList("CATALOG_ADDR", "catalog:50052, 10.0.0.7:50052 ,[::1]:50053"), ["catalog:50052", "10.0.0.7:50052", "[::1]:50053"]);
    assert.deepEqual(parseAddress("[::1]:50053"), { host: "::1", port: 50053 });
  });

  test("blank text is an empty list", () => {
    assert.deepEqual(parseAddressList("CATALOG_ADDR", "  "), []);
  });

  for (const [text, bad] of [
    ["catalog:50052,catalog", '"catalog"'],
    ["catalog:abc", '"catalog:abc"'],
    ["catalog:70000", '"catalog:70000"'],
    ["catalog:0", '"catalog:0"'],
    ["::1:50052", '"::1:50052"'],
    ["a:1,,b:2", 'entry 2 ""'],
    ["http://catalog:50052", '"http://catalog:50052"'],
  ] as const) {
    test(`refuses ${JSON.stringify(text)}, naming the setting and the bad entry`, () => {
      assert.throws(
        () => parseAddressList("CATALOG_ADDR", text),
        (error: unknown) => error instanceof Error && error.message.includes("CATALOG_ADDR") && error.message.includes(bad),
      );
    });
  }
});

describe("static discovery", () => {
  test("a watch answers the configured addresses as instances, ready at once", async () => {
    const { resolver } = createStaticDiscovery({ catalog: ["127.0.0.1:50052", "[::1]:50053"] });
    const watch = resolver.watch("catalog");
    await watch.ready();
    assert.deepEqual(watch.instances(), [
      { id: "catalog-127.0.0.1-50052", host: "127.0.0.1", port: 50052 },
      { id: "catalog-::1-50053", host: "::1", port: 50053 },
    ]);
    // The IPv6 host must come back out in the form gRPC dials.
    assert.deepEqual(watch.instances().map(instanceAddress), ["127.0.0.1:50052", "[::1]:50053"]);
    resolver.close();
  });

  test("an unconfigured service has no instances, and is still ready", async () => {
    const { resolver } = createStaticDiscovery({ catalog: ["127.0.0.1:50052"] });
    const watch = resolver.watch("payments");
    await watch.ready();
    assert.deepEqual(watch.instances(), []);
    watch.close();
  });

  test("a bad address fails at creation, naming the service", () => {
    assert.throws(() => createStaticDiscovery({ catalog: ["catalog"] }), /catalog.*"catalog"/);
  });

  test("registering is accepted and deregistering is harmless, more than once", async () => {
    const { registry } = createStaticDiscovery({});
    const handle = await registry.register({ name: "catalog", id: "catalog-1", host: "127.0.0.1", port: 50052 });
    await handle.deregister();
    await handle.deregister();
  });
});
