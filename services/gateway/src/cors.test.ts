import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { parseCorsOrigins } from "./config.js";
import { createCorsPolicy } from "./cors.js";

const preflight = (origin: string) => ({ origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type,authorization" });

describe("CORS", () => {
  const policy = createCorsPolicy(["http://shop.example", "http://localhost:5173"]);

  test("a preflight from an allowed origin is answered with Connect's methods and headers plus ours", () => {
    const verdict = policy.judge("OPTIONS", preflight("http://localhost:5173"));
    assert.equal(verdict.kind, "preflight");
    assert.ok(verdict.kind === "preflight");
    assert.equal(verdict.status, 204);
    assert.equal(verdict.headers["access-control-allow-origin"], "http://localhost:5173");
    assert.match(String(verdict.headers["access-control-allow-headers"]), /Connect-Protocol-Version.*authorization.*x-request-id/);
    assert.equal(verdict.headers["access-control-allow-methods"], "POST, GET");
  });

  test("a preflight from any other origin is refused without CORS headers", () => {
    const verdict = policy.judge("OPTIONS", preflight("http://evil.example"));
    assert.deepEqual(verdict, { kind: "preflight", status: 403, headers: { vary: "Origin" } });
  });

  test("an allowed origin's request may read the request id, retry hint and invalid field", () => {
    const verdict = policy.judge("POST", { origin: "http://shop.example" });
    assert.ok(verdict.kind === "allow");
    assert.match(String(verdict.headers["access-control-expose-headers"]), /x-request-id.*retry-after.*x-invalid-field/);
  });

  test("requests without Origin (not from a browser) and from other origins pass without CORS headers", () => {
    assert.deepEqual(policy.judge("POST", {}), { kind: "pass" });
    assert.deepEqual(policy.judge("POST", { origin: "http://evil.example" }), { kind: "pass" });
  });

  test("GATEWAY_CORS_ORIGINS takes bare origins and refuses paths or other schemes, naming the variable", () => {
    assert.deepEqual(parseCorsOrigins(" http://a.example, https://b.example:8443/ ,"), ["http://a.example", "https://b.example:8443"]);
    assert.deepEqual(parseCorsOrigins(""), []);
    assert.deepEqual(parseCorsOrigins("*"), ["*"]);
    assert.throws(() => parseCorsOrigins("http://a.example/app"), /GATEWAY_CORS_ORIGINS: "http:\/\/a.example\/app"/);
    assert.throws(() => parseCorsOrigins("ftp://a.example"), /GATEWAY_CORS_ORIGINS/);
    assert.throws(() => parseCorsOrigins("localhost:5173"), /GATEWAY_CORS_ORIGINS/);
  });
});
