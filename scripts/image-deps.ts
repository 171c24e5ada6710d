/**
 * `npm run image:deps`: what each image's production-dependencies stage
 * installs, measured without Docker. For every service it lays out what the
 * Dockerfile's manifests stage copies (every package.json and the lock file)
 * in a temporary directory, runs the deps stage's own `npm ci` command (read
 * from the Dockerfile, so the two cannot drift), and prints the size of the
 * node_modules that the image would carry, and the largest packages in it.
 * Uses npm's cache and the registry, like the image build.
 */
import { execFileSync } from "node:child_process";
import { cp, mkdir, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { APP_SERVICES } from "../deploy/call-graph.js";
import { parseDockerfile } from "../deploy/dockerfile-rules.js";

const root = path.resolve(import.meta.dirname, "..");
const only = process.argv.slice(2);

/**
 * The deps stage's `npm ci ...` command line with what follows it (the
 * pruning of files nothing runs), but not `npm cache clean`: this machine's
 * npm cache is not the image's.
 */
function depsCommand(dockerfile: string): string {
  const deps = parseDockerfile(dockerfile).stages.find((stage) => stage.name === "deps");
  const run = deps?.instructions.find((instruction) => instruction.getKeyword() === "RUN" && /npm ci/.test(instruction.getArgumentsContent() ?? ""));
  const steps = (run?.getArgumentsContent() ?? "")
    .replace(/\\\n/g, " ")
    .split("&&")
    .map((step) => step.trim().replace(/\s+/g, " "))
    .filter((step) => step !== "" && !step.startsWith("npm cache"));
  if (!steps[0]?.startsWith("npm ci")) throw new Error("the Dockerfile has no deps stage running npm ci");
  return steps.join(" && ");
}

async function sizeOf(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) total += await sizeOf(full);
    else if (entry.isFile()) total += (await stat(full)).size;
  }
  return total;
}

const manifests = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard"], { cwd: root, encoding: "utf8" })
  .split("\n")
  .filter((file) => file === "package-lock.json" || file === "package.json" || /^(packages|services|web)\/[^/]+\/package\.json$|^web\/package\.json$/.test(file));
const command = depsCommand(readFileSync(path.join(root, "Dockerfile"), "utf8"));
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
process.stdout.write(`deps stage: ${command}\n\n`);
process.stdout.write(`${"service".padEnd(15)}${"node_modules".padStart(14)}   largest packages\n`);
for (const service of APP_SERVICES.filter((name) => only.length === 0 || only.includes(name))) {
  const dir = await mkdtemp(path.join(tmpdir(), `meshwork-deps-${service}-`));
  try {
    for (const file of manifests) {
      await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
      await cp(path.join(root, file), path.join(dir, file));
    }
    execFileSync("sh", ["-c", command], {
      cwd: dir,
      env: { ...process.env, SERVICE: service, NODE_ENV: "production", NPM_CONFIG_AUDIT: "false", NPM_CONFIG_FUND: "false" },
      stdio: ["ignore", "ignore", "inherit"],
    });
    const modules = path.join(dir, "node_modules");
    const packages: [string, number][] = [];
    for (const entry of await readdir(modules, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith(".")) continue;
      const names = entry.name.startsWith("@") ? (await readdir(path.join(modules, entry.name))).map((name) => `${entry.name}/${name}`) : [entry.name];
      for (const name of names) packages.push([name, await sizeOf(path.join(modules, name))]);
    }
    packages.sort((a, b) => b[1] - a[1]);
    const total = await sizeOf(modules);
    const largest = packages
      .slice(0, 4)
      .map(([name, size]) => `${name} ${mb(size)}`)
      .join(", ");
    process.stdout.write(`${service.padEnd(15)}${mb(total).padStart(14)}   ${largest}\n`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
