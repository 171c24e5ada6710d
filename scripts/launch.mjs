/**
 * `npm start`'s launcher: `node scripts/launch.mjs scripts/start.ts`.
 *
 * Runs a TypeScript entry from one bundle of the project's own code (the
 * workspace packages, services and scripts it imports; every npm package
 * stays an ordinary import), built by esbuild into node_modules/.cache and
 * rebuilt when any of its sources changed (their mtimes are kept beside it).
 * Loading ~170 TypeScript files one by one through tsx's loader hooks cost
 * npm start about 1.1 s of CPU and 60 MB; the bundle loads in a fraction.
 *
 * Each bundled file keeps its own import.meta.url, filename and dirname, so
 * paths taken from them mean what they meant in the source. Without esbuild
 * installed, the entry runs through tsx as before.
 *
 * Plain JavaScript on purpose: it runs before anything could compile it.
 */
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";

const ROOT = path.resolve(import.meta.dirname, "..");
const CACHE = path.join(ROOT, "node_modules", ".cache", "meshwork-launch");

const entryArg = process.argv[2];
if (!entryArg) {
  process.stderr.write("usage: node scripts/launch.mjs <entry.ts> [args...]\n");
  process.exit(2);
}
const entry = path.resolve(entryArg);
// The entry sees the arguments after its own name, as under `tsx <entry>`.
process.argv.splice(1, 1);
process.argv[1] = entry;

const name = path.relative(ROOT, entry).replace(/[^a-zA-Z0-9]+/g, "_");
const bundle = path.join(CACHE, `${name}.mjs`);
const manifest = path.join(CACHE, `${name}.inputs.json`);

/** True when the bundle was built by this esbuild from sources that have not changed since. */
async function fresh(esbuildVersion) {
  const recorded = JSON.parse(await readFile(manifest, "utf8").catch(() => "null"));
  if (recorded?.esbuild !== esbuildVersion || recorded.entry !== entry) return false;
  const files = Object.entries(recorded.inputs);
  const now = await Promise.all(
    files.map(([file]) =>
      stat(file).then(
        (info) => info.mtimeMs,
        () => undefined,
      ),
    ),
  );
  return files.every(([, mtimeMs], index) => now[index] === mtimeMs);
}

/** Replaces import.meta.{url,filename,dirname} in a source file with what they are for that file. */
function keepImportMeta(source, file) {
  return source
    .replaceAll("import.meta.url", JSON.stringify(pathToFileURL(file).href))
    .replaceAll("import.meta.filename", JSON.stringify(file))
    .replaceAll("import.meta.dirname", JSON.stringify(path.dirname(file)));
}

async function build(esbuild) {
  const local = (specifier) => specifier.startsWith(".") || specifier.startsWith("/") || specifier.startsWith("@meshwork/");
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    write: false,
    outfile: bundle,
    sourcemap: "linked",
    keepNames: true,
    metafile: true,
    logLevel: "warning",
    plugins: [
      {
        name: "project-code-only",
        setup(build) {
          // npm packages (and node: builtins) load as they would without the bundle.
          build.onResolve({ filter: /.*/ }, (args) => (args.kind === "entry-point" || local(args.path) ? undefined : { external: true }));
          build.onLoad({ filter: /\.[cm]?ts$/ }, async (args) => ({ contents: keepImportMeta(await readFile(args.path, "utf8"), args.path), loader: "ts" }));
        },
      },
    ],
  });
  const inputs = {};
  for (const input of Object.keys(result.metafile.inputs)) {
    const file = path.resolve(ROOT, input);
    inputs[file] = (await stat(file)).mtimeMs;
  }
  for (const extra of ["tsconfig.json", "package.json"].map((file) => path.join(ROOT, file))) inputs[extra] = (await stat(extra)).mtimeMs;
  await mkdir(CACHE, { recursive: true });
  // Written aside and renamed into place: a start running beside this one reads either bundle whole.
  const suffix = `.${process.pid}.tmp`;
  for (const file of result.outputFiles) {
    await writeFile(file.path + suffix, file.contents);
    await rename(file.path + suffix, file.path);
  }
  await writeFile(manifest + suffix, JSON.stringify({ esbuild: esbuild.version, entry, inputs }));
  await rename(manifest + suffix, manifest);
}

let esbuild;
try {
  esbuild = await import("esbuild");
} catch {
  esbuild = undefined;
}
if (esbuild === undefined) {
  const { register } = await import("tsx/esm/api");
  register();
  await import(pathToFileURL(entry).href);
} else {
  if (!(await fresh(esbuild.version))) {
    await build(esbuild);
    // esbuild's service process would otherwise live (about 40 MB) as long as npm start.
    await esbuild.stop();
  }
  process.setSourceMapsEnabled(true);
  await import(pathToFileURL(bundle).href);
}
