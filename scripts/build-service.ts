/**
 * Compiles one service for its image, so that no TypeScript runs there (no
 * tsx, no esbuild at run time):
 *
 *   tsx scripts/build-service.ts SERVICE   services/SERVICE/dist/main.js, scripts/dist/health-probe.js
 *                                          and scripts/dist/secrets-init.js (compose's secrets step)
 *
 * Each entry is bundled by esbuild into one ES module. The workspace packages
 * (@meshwork/platform, @meshwork/contracts) and the service's own modules,
 * migrations included (they are TypeScript modules, not files read at run
 * time), are bundled in; every npm package stays an `import` by name,
 * resolved at run time from the image's production node_modules, the same
 * versions the lock file gives the sources. Optional packages imported
 * dynamically (PGlite) stay dynamic imports: the bundle loads them only when
 * it needs them.
 *
 * The output sits where the sources sit, one level below the package
 * (services/S/dist beside services/S/src), so what a module finds relative to
 * its own location (import.meta.dirname: the gateway's repository root for
 * GATEWAY_WEB_DIR) is the same directory compiled or not.
 *
 * The probe needs each service's default port when <SERVICE>_PORT is unset;
 * from the sources it reads the service's config spec, which the compiled
 * probe cannot load, so the build writes the defaults into it
 * (MESHWORK_DEFAULT_PORTS).
 */
import { build, type Metafile, type Plugin } from "esbuild";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { portSetting } from "./health-probe.js";

const root = path.resolve(import.meta.dirname, "..");

/** The services, as the build context holds them (deploy/, with the call graph, is not sent to the image build). */
export const servicesInTree = (): string[] => readdirSync(path.join(root, "services")).filter((name) => existsSync(path.join(root, "services", name, "src", "main.ts")));

/** Workspace packages are compiled in; every other bare import is an npm package, left to node_modules. */
const npmPackagesExternal: Plugin = {
  name: "npm-packages-external",
  setup(bundler) {
    bundler.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith("@meshwork/") || args.path.startsWith("node:")) return undefined;
      return { path: args.path, external: true };
    });
  },
};

export interface BuiltEntry {
  /** The JavaScript file written. */
  readonly file: string;
  /** What esbuild read and wrote (inputs, and each output's imports with their kind). */
  readonly metafile: Metafile;
}

async function bundle(entry: string, outfile: string, define: Record<string, string> = {}): Promise<BuiltEntry> {
  const result = await build({
    absWorkingDir: root,
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    // The oldest Node the engines range admits.
    target: "node20.11",
    plugins: [npmPackagesExternal],
    define,
    metafile: true,
    logLevel: "warning",
    legalComments: "none",
  });
  return { file: outfile, metafile: result.metafile };
}

export interface BuildOptions {
  /** Where the service's bundle goes (default services/SERVICE/dist): keep it one level below services/SERVICE. */
  readonly serviceOutDir?: string;
  /** Where the probe goes (default scripts/dist). */
  readonly probeOutDir?: string;
}

/** Compiles SERVICE's main.ts and the health probe; returns what each bundle holds and imports. */
export async function buildService(service: string, options: BuildOptions = {}): Promise<{ main: BuiltEntry; probe: BuiltEntry; secrets: BuiltEntry }> {
  const services = servicesInTree();
  if (!services.includes(service)) throw new Error(`"${service}" is not a service: one of ${services.join(", ")}`);
  const ports = Object.fromEntries(await Promise.all(services.map(async (name) => [name, (await portSetting(name)).default] as const)));
  const serviceOutDir = options.serviceOutDir ?? path.join(root, "services", service, "dist");
  const probeOutDir = options.probeOutDir ?? path.join(root, "scripts", "dist");
  const [main, probe, secrets] = await Promise.all([
    bundle(path.join(root, "services", service, "src", "main.ts"), path.join(serviceOutDir, "main.js")),
    bundle(path.join(root, "scripts", "health-probe.ts"), path.join(probeOutDir, "health-probe.js"), { MESHWORK_DEFAULT_PORTS: JSON.stringify(ports) }),
    // compose's `secrets` one-shot runs it from a service image: no image of its own to build or pull.
    bundle(path.join(root, "scripts", "secrets-init.ts"), path.join(probeOutDir, "secrets-init.js")),
  ]);
  return { main, probe, secrets };
}

if (import.meta.filename === process.argv[1]) {
  const service = process.argv[2];
  if (!service) {
    process.stderr.write("usage: tsx scripts/build-service.ts SERVICE\n");
    process.exit(2);
  }
  buildService(service).then(
    ({ main, probe, secrets }) => {
      for (const built of [main, probe, secrets]) process.stdout.write(`${path.relative(root, built.file)}\n`);
    },
    (error: unknown) => {
      process.stderr.write(`build failed: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
