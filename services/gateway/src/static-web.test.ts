import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, test } from "vitest";
import { createLogger } from "@meshwork/platform";
import { createCorsPolicy } from "./cors.js";
import { createEdgeHandler } from "./edge-handler.js";
import { createEdgeServer, type EdgeServer } from "./edge-server.js";
import { createStaticWeb, resolveWebDir } from "./static-web.js";

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A raw HTTP/1.1 request: the path goes out exactly as written (no URL normalisation by the client). */
function request(port: number, method: string, rawPath: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path: rawPath, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.once("error", reject);
    req.end();
  });
}

describe("the gateway's web app files", () => {
  let dir: string;
  let root: string;
  let server: EdgeServer;
  let port: number;
  const SECRET = "the secret outside the web root";

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "meshwork-static-"));
    root = path.join(dir, "dist");
    await mkdir(path.join(root, "assets"), { recursive: true });
    await mkdir(path.join(root, "img"));
    await writeFile(path.join(root, "index.html"), "<!doctype html><title>shop</title>");
    await writeFile(path.join(root, "assets", "index-AbCd1234.js"), "console.log('app')");
    await writeFile(path.join(root, "assets", "index-Zz9_8-7x.css"), "body{}");
    await writeFile(path.join(root, "img", "cup.svg"), "<svg xmlns='http://www.w3.org/2000/svg'/>");
    await writeFile(path.join(root, "favicon.svg"), "<svg/>");
    await writeFile(path.join(dir, "secret.txt"), SECRET);
    await writeFile(path.join(dir, "dist-evil.txt"), SECRET);
    // The real edge: HTTP/1.1 and h2c on one port, with a stand-in for Connect that marks what reached it.
    server = createEdgeServer({
      handler: createEdgeHandler({
        connect: (_req, res) => {
          res.writeHead(404, { "x-reached": "connect" });
          res.end();
        },
        cors: createCorsPolicy(["http://shop.example"]),
        maxRequestBytes: 1024,
        serving: () => true,
        web: createStaticWeb({ root }),
      }),
      log: createLogger({ service: "test", level: "silent" }),
    });
    port = await server.listen("127.0.0.1", 0);
  });
  afterAll(async () => {
    await server.close(1000);
    await rm(dir, { recursive: true, force: true });
  });

  test("/ is the app's index.html, as HTML that is always revalidated", async () => {
    const answer = await request(port, "GET", "/");
    assert.equal(answer.status, 200);
    assert.equal(answer.headers["content-type"], "text/html; charset=utf-8");
    assert.equal(answer.headers["cache-control"], "no-cache");
    assert.equal(answer.body, "<!doctype html><title>shop</title>");
    assert.match(String(answer.headers["content-security-policy"]), /default-src 'self'.*frame-ancestors 'none'/);
  });

  test("content-hashed assets are cached for a year as immutable, with their content types; other files are revalidated", async () => {
    const js = await request(port, "GET", "/assets/index-AbCd1234.js");
    assert.equal(js.headers["content-type"], "text/javascript; charset=utf-8");
    assert.equal(js.headers["cache-control"], "public, max-age=31536000, immutable");
    assert.equal(js.body, "console.log('app')");
    const css = await request(port, "GET", "/assets/index-Zz9_8-7x.css");
    assert.equal(css.headers["content-type"], "text/css; charset=utf-8");
    assert.equal(css.headers["cache-control"], "public, max-age=31536000, immutable");
    const svg = await request(port, "GET", "/img/cup.svg");
    assert.equal(svg.headers["content-type"], "image/svg+xml");
    assert.equal(svg.headers["cache-control"], "no-cache");
    assert.equal(svg.headers["x-content-type-options"], "nosniff");
  });

  test("a client-side route gets index.html; a missing file gets 404, never the page", async () => {
    const route = await request(port, "GET", "/orders/0b5c0e4e-1?tab=timeline");
    assert.equal(route.status, 200);
    assert.match(route.body, /<title>shop<\/title>/);
    const missing = await request(port, "GET", "/assets/gone-12345678.js");
    assert.equal(missing.status, 404);
    assert.equal(missing.headers["content-type"], "text/plain; charset=utf-8");
  });

  test("no path leaves the web root: dot segments, encoded dots and slashes, backslashes and NUL", async () => {
    const attempts = [
      "/../secret.txt",
      "/assets/../../secret.txt",
      "/%2e%2e/secret.txt",
      "/%2E%2E%2Fsecret.txt",
      "/..%2fsecret.txt",
      "/..%5csecret.txt",
      "/%2e%2e%5csecret.txt",
      "/....//secret.txt",
      "/../dist-evil.txt",
      "/secret.txt%00.html",
      "/%252e%252e/secret.txt",
      "/%zz/secret.txt",
    ];
    for (const attempt of attempts) {
      const answer = await request(port, "GET", attempt);
      assert.ok(!answer.body.includes(SECRET), `${attempt} served a file outside the root`);
      assert.ok(answer.status === 404 || answer.status === 400, `${attempt}: ${answer.status}`);
    }
  });

  test("HEAD answers the headers without a body; If-None-Match with the ETag gets 304", async () => {
    const head = await request(port, "HEAD", "/favicon.svg");
    assert.equal(head.status, 200);
    assert.equal(head.headers["content-length"], "6");
    assert.equal(head.body, "");
    const again = await request(port, "GET", "/favicon.svg", { "if-none-match": head.headers.etag! });
    assert.equal(again.status, 304);
    assert.equal(again.body, "");
  });

  test("only GET and HEAD are served: other methods on a page path get 405 with Allow; RPC paths and preflights are left to Connect and CORS", async () => {
    const post = await request(port, "POST", "/");
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, "GET, HEAD");
    const del = await request(port, "DELETE", "/index.html");
    assert.equal(del.status, 405);
    const rpc = await request(port, "GET", "/shop.catalog.v1.CatalogService/ListProducts?message=%7B%7D&encoding=json");
    assert.equal(rpc.headers["x-reached"], "connect");
    const preflight = await request(port, "OPTIONS", "/shop.catalog.v1.CatalogService/ListProducts", { origin: "http://shop.example", "access-control-request-method": "POST" });
    assert.equal(preflight.status, 204);
  });

  test("the app is served over h2c as well as HTTP/1.1", async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const stream = session.request({ ":path": "/assets/index-AbCd1234.js" });
      const [headers, body] = await Promise.all([
        new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once("response", resolve)),
        new Promise<string>((resolve) => {
          let text = "";
          stream.setEncoding("utf8");
          stream.on("data", (chunk: string) => (text += chunk));
          stream.once("end", () => resolve(text));
        }),
      ]);
      assert.equal(headers[":status"], 200);
      assert.equal(headers["content-type"], "text/javascript; charset=utf-8");
      assert.equal(body, "console.log('app')");
    } finally {
      session.close();
    }
  });

  test("when the app is not built, a page request gets 404 saying how to build it", async () => {
    const web = createStaticWeb({ root: path.join(dir, "not-built") });
    const unbuilt = http.createServer((req, res) => void web.handle(req, res));
    await new Promise<void>((resolve) => unbuilt.listen(0, "127.0.0.1", resolve));
    try {
      const answer = await request((unbuilt.address() as { port: number }).port, "GET", "/");
      assert.equal(answer.status, 404);
      assert.match(answer.body, /npm run build -w @meshwork\/web/);
    } finally {
      unbuilt.close();
    }
  });

  test("GATEWAY_WEB_DIR is taken from the repository root when relative, whatever the working directory", () => {
    const repo = path.resolve(import.meta.dirname, "../../..");
    assert.equal(resolveWebDir("web/dist"), path.join(repo, "web", "dist"));
    assert.equal(resolveWebDir("/srv/web"), "/srv/web");
  });
});
