/**
 * Builds the web app (web/dist) when it is missing or older than its sources,
 * for `npm start` and the tests that load it in a browser. Several test
 * processes may ask at once: a lock directory (mkdir is atomic) lets one
 * build while the others wait for it, then find the build current.
 */
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { mkdir, readdir, rm, stat, writeFile, readFile } from "node:fs/promises";
import path from "node:path";
import { performance } from "node:perf_hooks";

export const REPO_ROOT = path.resolve(import.meta.dirname, "../..");
export const WEB_DIR = path.join(REPO_ROOT, "web");
export const WEB_DIST = path.join(WEB_DIR, "dist");
const LOCK = path.join(WEB_DIR, ".build-lock");
/** What the bundle is built from: the app, its build settings and the generated contracts it imports. */
const SOURCES = ["web/src", "web/public", "web/index.html", "web/vite.config.ts", "web/package.json", "packages/contracts/src"].map((p) => path.join(REPO_ROOT, p));
const LOCK_WAIT_MS = 120_000;

async function newestMtime(target: string): Promise<number> {
  const info = await stat(target).catch(() => undefined);
  if (info === undefined) return 0;
  if (!info.isDirectory()) return info.mtimeMs;
  let newest = info.mtimeMs;
  for (const entry of await readdir(target)) newest = Math.max(newest, await newestMtime(path.join(target, entry)));
  return newest;
}

/** Why the build in `outDir` (web/dist by default) must be (re)built, or undefined when it is current. */
export async function webBuildStaleness(outDir: string = WEB_DIST): Promise<string | undefined> {
  const built = await stat(path.join(outDir, "index.html")).catch(() => undefined);
  if (built === undefined) return `${outDir === WEB_DIST ? "web/dist" : outDir} is missing`;
  let newest = 0;
  for (const source of SOURCES) newest = Math.max(newest, await newestMtime(source));
  return newest > built.mtimeMs ? "web sources changed since the last build" : undefined;
}

/**
 * `vite build` as the web workspace's build script runs it, but started
 * straight from vite's own bin with this Node: going through `npm run build
 * -w` cost one more npm (about half a second and 60 MB) on every first start.
 */
function runBuild(outDir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const vitePackage = createRequire(path.join(WEB_DIR, "package.json")).resolve("vite/package.json");
    const viteBin = path.join(path.dirname(vitePackage), "bin", "vite.js");
    const child = spawn(process.execPath, [viteBin, "build", "--outDir", outDir], { cwd: WEB_DIR, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`building the web app failed (exit ${code}):\n${output}`))));
  });
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Takes the build lock, clearing one left by a process that died; waits while another process holds it. */
async function withLock<T>(work: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      await mkdir(LOCK);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const owner = Number(await readFile(path.join(LOCK, "pid"), "utf8").catch(() => "NaN"));
      if (Number.isInteger(owner) && !alive(owner)) {
        await rm(LOCK, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`the web build lock ${LOCK} is still held after ${LOCK_WAIT_MS} ms (by pid ${owner})`);
      // Polled: another process's build has no event this one could wait on.
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  try {
    await writeFile(path.join(LOCK, "pid"), String(process.pid));
    return await work();
  } finally {
    await rm(LOCK, { recursive: true, force: true });
  }
}

export interface WebBuildResult {
  /** Absolute path of the built app. */
  readonly dir: string;
  /** Why it was built, or undefined when it was current. */
  readonly reason: string | undefined;
  readonly ms: number;
}

/** Makes sure the web app in `outDir` (web/dist by default) is current, building it (about a second here) when not. */
export async function ensureWebBuild(outDir: string = WEB_DIST): Promise<WebBuildResult> {
  const started = performance.now();
  const dir = path.resolve(outDir);
  if ((await webBuildStaleness(dir)) === undefined) return { dir, reason: undefined, ms: 0 };
  return withLock(async () => {
    const reason = await webBuildStaleness(dir);
    if (reason !== undefined) await runBuild(dir);
    return { dir, reason, ms: Math.round(performance.now() - started) };
  });
}
