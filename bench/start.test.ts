import assert from "node:assert/strict";
import path from "node:path";
import { test } from "vitest";
import { parseBanner, startEnv } from "./start.js";

test("the banner gives the gateway's URL and the process's own ready time, once it is complete", () => {
  const banner = [
    "Meshwork is running (embedded mode: PostgreSQL in /tmp/x/pglite, in-process broker), ready in 1834 ms, 402 MB resident.",
    "",
    "  web shop       http://127.0.0.1:41234/   open it in a browser",
  ].join("\n");
  assert.deepEqual(parseBanner(`> meshwork@0.1.0 start\n${banner}`), { gatewayUrl: "http://127.0.0.1:41234", insideMs: 1834 });
  assert.equal(parseBanner(banner.split("\n")[0]!), undefined);
});

test("a measured start gets its own data dir, web build and free ports, and none of the caller's service settings", () => {
  const env = startEnv({ PATH: "/bin", CATALOG_PORT: "50052", ORDERS_DATA_DIR: ".data/pglite", MESHWORK_WEB_BUILD_DIR: "web/dist", OTEL_SERVICE_NAME: "x", GATEWAY_WEB_DIR: "" }, "/tmp/run");
  assert.equal(env.PATH, "/bin");
  assert.equal(env.CATALOG_PORT, "0");
  assert.equal(env.GATEWAY_METRICS_PORT, "0");
  assert.equal(env.ORDERS_DATA_DIR, path.join("/tmp/run", "pglite"));
  assert.equal(env.MESHWORK_WEB_BUILD_DIR, path.join("/tmp/run", "web-dist"));
  assert.equal(env.OTEL_SERVICE_NAME, undefined);
  assert.equal(env.GATEWAY_WEB_DIR, undefined);
});
