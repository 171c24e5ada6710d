/**
 * The README's first command, as a user types it: `npm start` (npm, then
 * scripts/launch.mjs, which runs the start code from its esbuild bundle)
 * reaches its banner, the gateway it names answers a catalog call and serves
 * the web app, and Ctrl-C stops the whole process group cleanly. Other tests
 * start the all-in-one mode in-process (embedded.int.test.ts); only this one
 * goes through npm and the launcher, which is what a fresh clone runs.
 * Everything lives in a temp dir (startEnv: data dirs, web build, ports 0).
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { exited, parseBanner, startEnv } from "../../bench/start.js";

const REPO_ROOT = path.resolve(import.meta.dirname, "../..");

describe("npm start", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  test("reaches its banner through npm and the launcher, serves the catalog and the web app at the gateway it names, and stops on Ctrl-C", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "meshwork-npm-start-"));
    dirs.push(dir);
    // Its own process group, so Ctrl-C can go to npm and everything below it, as a terminal sends it.
    const child = spawn("npm", ["start"], { cwd: REPO_ROOT, env: { ...startEnv(process.env, dir), FORCE_COLOR: "0" }, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    try {
      const banner = await new Promise<{ gatewayUrl: string }>((resolve, reject) => {
        const check = (): void => {
          const parsed = parseBanner(output);
          if (parsed) resolve(parsed);
        };
        child.stdout.on("data", check);
        child.once("exit", (code) => reject(new Error(`npm start exited (${code}) before its banner:\n${output}`)));
      });

      const products = await fetch(`${banner.gatewayUrl}/shop.catalog.v1.CatalogService/ListProducts`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ pageSize: 2 }),
      });
      expect(products.status).toBe(200);
      const body = (await products.json()) as { products?: { id: string }[] };
      expect(body.products?.length).toBe(2);

      const page = await fetch(`${banner.gatewayUrl}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toMatch(/<div id="root">/);
    } finally {
      if (child.pid !== undefined && child.exitCode === null) process.kill(-child.pid, "SIGINT");
    }
    // npm itself ends by the SIGINT it got; the service process below it stops on its own
    // and says how. Its output pipe ends once every process holding it (npm, the launcher's
    // node) has exited: nothing of the group is left running.
    const [{ code, signal }] = await Promise.all([exited(child), child.stdout.readableEnded ? Promise.resolve() : new Promise((resolve) => child.stdout.once("end", resolve))]);
    expect(code === 0 || signal === "SIGINT", `npm ended with ${code ?? signal}`).toBe(true);
    expect(output).toMatch(/Meshwork stopped: every service drained and closed\./);
  }, 180_000);
});
