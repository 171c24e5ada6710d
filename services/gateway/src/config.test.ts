import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { ConfigError } from "@meshwork/platform";
import { loadGatewayConfig } from "./config.js";
import { startGateway } from "./main.js";

describe("gateway configuration", () => {
  test("the defaults: port 8080 on loopback, the services' default ports, 1 MiB requests, a 2 s catalog cache", () => {
    const config = loadGatewayConfig({});
    assert.equal(config.port, 8080);
    assert.equal(config.host, "127.0.0.1");
    assert.equal(config.catalogAddr, "127.0.0.1:50052");
    assert.equal(config.notificationsAddr, "127.0.0.1:50055");
    assert.equal(config.maxRequestBytes, 1024 * 1024);
    assert.equal(config.catalogCacheMs, 2000);
  });

  test("a retired setting stops start-up naming its replacement, so a deployment does not silently lose it", () => {
    assert.throws(() => loadGatewayConfig({ GATEWAY_TRUSTED_PROXY_HOPS: "1" }), /GATEWAY_TRUSTED_PROXY_HOPS: no longer read; use GATEWAY_TRUSTED_PROXIES/);
    assert.throws(() => loadGatewayConfig({ GATEWAY_MESH_STATUS_PUBLIC: "true" }), /use GATEWAY_MESH_STATUS/);
    assert.throws(() => loadGatewayConfig({ GATEWAY_REFLECTION: "yes" }), /GATEWAY_REFLECTION.*expected off, authenticated or public/s);
  });

  test("a bad value stops start-up with a message naming its variable", () => {
    assert.throws(
      () => loadGatewayConfig({ GATEWAY_PORT: "80800", GATEWAY_MAX_REQUEST_BYTES: "-1" }),
      (error) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /GATEWAY_PORT/);
        assert.match(error.message, /GATEWAY_MAX_REQUEST_BYTES/);
        return true;
      },
    );
  });

  test("a bad backend address or CORS origin stops start-up before anything listens", async () => {
    await assert.rejects(startGateway({ GATEWAY_PORT: "0", GATEWAY_CATALOG_ADDR: "catalog" }), /GATEWAY_CATALOG_ADDR: entry 1 "catalog"/);
    await assert.rejects(startGateway({ GATEWAY_PORT: "0", GATEWAY_CORS_ORIGINS: "http://shop.example/app" }), /GATEWAY_CORS_ORIGINS/);
  });
});
