import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, test } from "vitest";
import { createLogger } from "@meshwork/platform";
import { createCorsPolicy } from "./cors.js";
import { createEdgeHandler } from "./edge-handler.js";
import { createEdgeServer, type EdgeServer } from "./edge-server.js";
import { createStaticWeb } from "./static-web.js";

function get(port: number, rawPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method: "GET", path: rawPath }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode!, body }));
    });
    req.once("error", reject);
    req.end();
  });
}

describe("the web root does not follow symbolic links out of it", () => {
  let dir: string;
  let server: EdgeServer;
  let port: number;
  const PASSWD = "root:x:0:0:root:/root:/bin/bash\n";

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "meshwork-symlinks-"));
    // Outside the root: a passwd-like file, and a directory with its own index.html.
    await mkdir(path.join(dir, "etc"));
    await writeFile(path.join(dir, "etc", "passwd"), PASSWD);
    await writeFile(path.join(dir, "etc", "index.html"), PASSWD);
    const real = path.join(dir, "real-dist");
    await mkdir(path.join(real, "img"), { recursive: true });
    await writeFile(path.join(real, "index.html"), "<!doctype html><title>shop</title>");
    await writeFile(path.join(real, "img", "cup.svg"), "<svg/>");
    await symlink(path.join(dir, "etc", "passwd"), path.join(real, "passwd.txt"));
    await symlink(path.join(dir, "etc"), path.join(real, "etc"));
    await symlink(path.join(dir, "etc"), path.join(real, "settings"));
    await symlink(path.join(real, "img", "cup.svg"), path.join(real, "mug.svg"));
    // The configured root is itself a link (as a release directory often is).
    const root = path.join(dir, "dist");
    await symlink(real, root);
    server = createEdgeServer({
      handler: createEdgeHandler({
        connect: (_req, res) => {
          res.writeHead(404);
          res.end();
        },
        cors: createCorsPolicy([]),
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

  test("a link to a file outside the root is 404 and sends none of it", async () => {
    const answer = await get(port, "/passwd.txt");
    assert.equal(answer.status, 404);
    assert.doesNotMatch(answer.body, /root:x:0:0/);
  });

  test("a linked directory leading outside is 404, for a file in it and for its index.html", async () => {
    for (const url of ["/etc/passwd", "/etc/", "/settings"]) {
      const answer = await get(port, url);
      assert.equal(answer.status, 404, url);
      assert.doesNotMatch(answer.body, /root:x:0:0/, url);
    }
  });

  test("a link that stays inside the root is served, and a root that is itself a link works", async () => {
    const mug = await get(port, "/mug.svg");
    assert.equal(mug.status, 200);
    assert.equal(mug.body, "<svg/>");
    const page = await get(port, "/");
    assert.equal(page.status, 200);
    assert.match(page.body, /<title>shop<\/title>/);
  });
});
