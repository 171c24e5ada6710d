/**
 * The API gate: `npm run breaking` and `npm run api:release -- <version>`.
 *
 * The released API has two witnesses, and the gate compares the contracts in
 * proto/ against both:
 *  - api/released.binpb, the image of the last release (committed);
 *  - the same file as it was at the last release tag (`api-v<version>`), when
 *    the repository has one. This catches a baseline that was rebuilt outside
 *    a release to make `buf breaking` pass: the tag cannot be rewritten quietly.
 *    Tags are a witness only: a clone without them (CI clones main alone) has
 *    every release's image in the archive below.
 * api/releases.json records each release (version, date, the image's sha256,
 * its packages with their deprecation and sunset dates), so the committed
 * image must also be the one the last release recorded. Every release's image
 * is also kept as api/releases/<version>.binpb (the frozen clients are
 * generated from an older one), and each must be the image its record names.
 *
 * A breaking change is refused, with one exception that must be asked for by
 * name: removing a whole package whose recorded sunset has passed
 * (`--remove-sunset shop.catalog.v1`). Only the deletion of that package's
 * files is forgiven; any other finding still fails the release.
 *
 * Everything runs the real buf binary (offline) and git; `root` is the
 * repository (tests pass a scratch copy).
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, realpath, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

/** The repository's own buf (the @bufbuild/buf npm package), whatever `root` is. */
export const DEFAULT_BUF = path.resolve(import.meta.dirname, "..", "..", "node_modules", ".bin", "buf");
export const RELEASED_IMAGE = "api/released.binpb";
export const RELEASE_LOG = "api/releases.json";
/** Every release's image, by version: what the frozen clients of an older release are generated from. */
export const RELEASE_ARCHIVE = "api/releases";
export const archivedImage = (version: string): string => `${RELEASE_ARCHIVE}/${version}.binpb`;
export const TAG_PREFIX = "api-v";
/**
 * The last release's deprecations and sunsets as TypeScript, for the
 * services and the gateway (their `Deprecation` and `Sunset` headers): the
 * images are built without api/ (.dockerignore), so they cannot read
 * releases.json at run time. Written with it; a test compares the two.
 */
export const LIFECYCLE_MODULE = "packages/contracts/src/api-lifecycle.ts";
/** Exit code of `buf breaking` and `buf lint` when they found violations (1 is an error of buf itself). */
const BUF_FOUND_VIOLATIONS = 100;
const PROCESS_TIMEOUT_MS = 120_000;

/** Something the gate refuses: the message says what and why, for a person to read. */
export class ApiGateError extends Error {
  override readonly name = "ApiGateError";
}

export interface GateOptions {
  /** The repository root: proto/, buf.yaml and api/ live there. */
  readonly root: string;
  /** The buf binary; the repository's own by default. */
  readonly buf?: string;
}

export interface Finding {
  /** The proto file, relative to the module ("" when buf names none, e.g. a deleted file). */
  readonly path: string;
  readonly line: number;
  readonly type: string;
  readonly message: string;
}

export interface Baseline {
  /** What the contracts were compared with, for messages: "api/released.binpb" or "tag api-v1.0.0". */
  readonly label: string;
  readonly image: string;
}

export interface BaselineResult {
  readonly baseline: Baseline;
  readonly findings: readonly Finding[];
}

export interface PackageRecord {
  /** RFC 9745's Deprecation, as a date (YYYY-MM-DD): when the release deprecated the package. */
  readonly deprecated?: string;
  /** RFC 8594's Sunset, as a date: after it, the package may be removed (`--remove-sunset`). */
  readonly sunset?: string;
}

export interface ReleaseRecord {
  readonly version: string;
  /** YYYY-MM-DD, UTC. */
  readonly date: string;
  /** sha256 of api/released.binpb as this release wrote it. */
  readonly sha256: string;
  /** Every package of the release's own files (imports such as google.protobuf excluded). */
  readonly packages: Readonly<Record<string, PackageRecord>>;
  /** Packages this release removed after their sunset. */
  readonly removed: readonly string[];
}

/** The source of LIFECYCLE_MODULE for a release. */
export function lifecycleModule(record: ReleaseRecord): string {
  // Laid out as the formatter (biome) would, so the written file passes `biome ci` as it is.
  const dates = (record: PackageRecord): string => {
    const fields = Object.entries(record).map(([key, value]) => `${key}: ${JSON.stringify(value)}`);
    return fields.length === 0 ? "{}" : `{ ${fields.join(", ")} }`;
  };
  const entries = Object.entries(record.packages).map(([pkg, record]) => `  ${JSON.stringify(pkg)}: ${dates(record)},`);
  return [
    `// Written by \`npm run api:release\` from ${RELEASE_LOG} (release ${record.version}): never edit by hand.`,
    "",
    "/** RFC 9745 deprecation and RFC 8594 sunset dates (YYYY-MM-DD, UTC) of a package. */",
    "export interface PackageLifecycle {",
    "  readonly deprecated?: string;",
    "  readonly sunset?: string;",
    "}",
    "",
    "/** The API release these dates come from. */",
    `export const API_RELEASE = ${JSON.stringify(record.version)};`,
    "",
    '/** Every package of that release, by full name (e.g. "shop.orders.v1"). */',
    "export const API_LIFECYCLE: Readonly<Record<string, PackageLifecycle>> = {",
    ...entries,
    "};",
    "",
  ].join("\n");
}

export interface ReleaseLog {
  readonly releases: readonly ReleaseRecord[];
}

// ---------------------------------------------------------------------------
// Processes

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(command: string, args: readonly string[], cwd: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"], timeout: PROCESS_TIMEOUT_MS, killSignal: "SIGKILL" });
    const stdout: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.once("error", (error) => reject(new Error(`${command} ${args.join(" ")} could not start: ${error.message}`, { cause: error })));
    child.once("close", (code) => resolve({ code, stdout: Buffer.concat(stdout).toString("utf8"), stderr }));
  });
}

/** Runs git; binary output (git show of an image) is returned as a Buffer. */
function gitBinary(root: string, args: readonly string[]): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("git", args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], timeout: PROCESS_TIMEOUT_MS, killSignal: "SIGKILL" });
    const stdout: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.once("error", (error) => reject(new Error(`git could not start: ${error.message}`, { cause: error })));
    child.once("close", (code) => resolve({ code, stdout: Buffer.concat(stdout), stderr }));
  });
}

const bufOf = (options: GateOptions): string => options.buf ?? DEFAULT_BUF;

// ---------------------------------------------------------------------------
// Versions and dates

const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** MAJOR.MINOR.PATCH, numbers only: release versions name tags, so no pre-release or build suffix. */
export function parseVersion(text: string): [number, number, number] {
  const match = SEMVER.exec(text);
  if (!match) throw new ApiGateError(`version ${JSON.stringify(text)} is not MAJOR.MINOR.PATCH (semantic versioning without suffixes), e.g. 1.2.0`);
  return [Number(match[1]), Number(match[2]), Number(match[3])];
}

export function compareVersions(a: string, b: string): number {
  const [x, y] = [parseVersion(a), parseVersion(b)];
  for (let i = 0; i < 3; i++) if (x[i]! !== y[i]!) return x[i]! - y[i]!;
  return 0;
}

export function parseDate(text: string, what: string): string {
  const parsed = new Date(`${text}T00:00:00Z`);
  // The round trip refuses 2027-02-30, which Date would roll over to March.
  if (!DATE.test(text) || Number.isNaN(parsed.getTime()) || parsed.toISOString().slice(0, 10) !== text) {
    throw new ApiGateError(`${what}: ${JSON.stringify(text)} is not a date YYYY-MM-DD`);
  }
  return text;
}

export const todayUtc = (): string => new Date().toISOString().slice(0, 10);

// ---------------------------------------------------------------------------
// The release log

export async function readReleaseLog(root: string): Promise<ReleaseLog> {
  const file = path.join(root, RELEASE_LOG);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { releases: [] };
    throw error;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ApiGateError(`${RELEASE_LOG} is not JSON: ${(error as Error).message}`);
  }
  const releases = (parsed as { releases?: unknown } | null)?.releases;
  if (!Array.isArray(releases)) throw new ApiGateError(`${RELEASE_LOG} has no "releases" array`);
  releases.forEach((release: unknown, index) => {
    const r = release as Partial<ReleaseRecord> | null;
    const where = `${RELEASE_LOG} releases[${index}]`;
    if (typeof r?.version !== "string") throw new ApiGateError(`${where}.version is missing`);
    parseVersion(r.version);
    parseDate(String(r.date), `${where}.date`);
    if (typeof r.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(r.sha256)) throw new ApiGateError(`${where}.sha256 is not a sha256 in hex`);
    if (typeof r.packages !== "object" || r.packages === null) throw new ApiGateError(`${where}.packages is missing`);
    for (const [name, record] of Object.entries(r.packages)) {
      if (record.deprecated !== undefined) parseDate(record.deprecated, `${where}.packages["${name}"].deprecated`);
      if (record.sunset !== undefined) parseDate(record.sunset, `${where}.packages["${name}"].sunset`);
    }
    if (!Array.isArray(r.removed)) throw new ApiGateError(`${where}.removed is missing`);
    if (index > 0 && compareVersions(r.version, (releases[index - 1] as ReleaseRecord).version) <= 0) {
      throw new ApiGateError(`${where}: version ${r.version} does not follow ${(releases[index - 1] as ReleaseRecord).version}`);
    }
  });
  return { releases: releases as ReleaseRecord[] };
}

const sha256 = (bytes: Buffer): string => createHash("sha256").update(bytes).digest("hex");

/**
 * The committed image must be the one the last release wrote, and each
 * archived image the one its release recorded: a baseline rebuilt by hand is
 * refused.
 */
export async function checkRecordedImage(root: string, log: ReleaseLog): Promise<void> {
  const last = log.releases.at(-1);
  if (!last) return;
  const actual = sha256(await readFile(path.join(root, RELEASED_IMAGE)));
  if (actual !== last.sha256) {
    throw new ApiGateError(
      `${RELEASED_IMAGE} (sha256 ${actual}) is not the image release ${last.version} recorded in ${RELEASE_LOG} (sha256 ${last.sha256}). ` +
        "It was rebuilt outside `npm run api:release`: restore it (git checkout) and make the change in a new version package.",
    );
  }
  for (const release of log.releases) await releasedImage(root, log, release.version);
}

/** The path of release `version`'s archived image, after checking it is the one its record names. */
export async function releasedImage(root: string, log: ReleaseLog, version: string): Promise<string> {
  const record = log.releases.find((release) => release.version === version);
  if (!record) throw new ApiGateError(`release ${version} is not recorded in ${RELEASE_LOG}`);
  const file = path.join(root, archivedImage(version));
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new ApiGateError(`${archivedImage(version)} is missing: every release's image is kept in ${RELEASE_ARCHIVE}/`);
    throw error;
  }
  const actual = sha256(bytes);
  if (actual !== record.sha256) {
    throw new ApiGateError(`${archivedImage(version)} (sha256 ${actual}) is not the image release ${version} recorded in ${RELEASE_LOG} (sha256 ${record.sha256})`);
  }
  return file;
}

// ---------------------------------------------------------------------------
// Images, tags and buf

export interface ImageFile {
  readonly name: string;
  readonly package: string;
  readonly isImport: boolean;
}

/** The files of a Buf image (or of the module in a directory), with their packages. */
export async function imageFiles(options: GateOptions, input: string): Promise<ImageFile[]> {
  const result = await run(bufOf(options), ["build", input, "--exclude-source-info", "-o", "-#format=json"], options.root);
  if (result.code !== 0) throw new ApiGateError(`buf build ${input} failed:\n${result.stderr}${result.stdout}`);
  const image = JSON.parse(result.stdout) as { file?: { name?: string; package?: string; bufExtension?: { isImport?: boolean } }[] };
  return (image.file ?? []).map((file) => ({ name: file.name ?? "", package: file.package ?? "", isImport: file.bufExtension?.isImport === true }));
}

/** The highest `api-v<version>` tag, or undefined when there is none (or `root` is not a git repository). */
export async function lastReleaseTag(root: string): Promise<{ tag: string; version: string } | undefined> {
  // Only the repository whose root `root` is: a scratch copy inside some other repository must not see that one's tags.
  const top = await gitBinary(root, ["rev-parse", "--show-toplevel"]);
  if (top.code !== 0 || (await realpath(top.stdout.toString("utf8").trim())) !== (await realpath(root))) return undefined;
  const listed = await gitBinary(root, ["tag", "--list", `${TAG_PREFIX}*`]);
  if (listed.code !== 0) return undefined;
  const versions = listed.stdout
    .toString("utf8")
    .split("\n")
    .map((tag) => tag.trim().slice(TAG_PREFIX.length))
    .filter((version) => SEMVER.test(version))
    .sort(compareVersions);
  const version = versions.at(-1);
  return version === undefined ? undefined : { tag: `${TAG_PREFIX}${version}`, version };
}

/**
 * What the contracts are compared with: the committed image, and the image
 * committed at the last release tag (extracted into `scratch`).
 */
export async function baselines(root: string, scratch: string): Promise<Baseline[]> {
  const found: Baseline[] = [{ label: RELEASED_IMAGE, image: path.join(root, RELEASED_IMAGE) }];
  const last = await lastReleaseTag(root);
  if (last) {
    const shown = await gitBinary(root, ["show", `${last.tag}:${RELEASED_IMAGE}`]);
    if (shown.code !== 0) throw new ApiGateError(`tag ${last.tag} has no ${RELEASED_IMAGE}: ${shown.stderr.trim()}`);
    const image = path.join(scratch, `${last.tag}.binpb`);
    await writeFile(image, shown.stdout);
    found.push({ label: `tag ${last.tag}`, image });
  }
  return found;
}

export async function breakingAgainst(options: GateOptions, baseline: Baseline): Promise<BaselineResult> {
  const result = await run(bufOf(options), ["breaking", "proto", "--against", baseline.image, "--error-format", "json"], options.root);
  if (result.code === 0) return { baseline, findings: [] };
  if (result.code !== BUF_FOUND_VIOLATIONS) throw new ApiGateError(`buf breaking against ${baseline.label} failed (exit ${result.code}):\n${result.stderr}${result.stdout}`);
  const findings = result.stdout
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line): Finding => {
      const raw = JSON.parse(line) as { path?: string; start_line?: number; type?: string; message?: string };
      return { path: raw.path ?? "", line: raw.start_line ?? 0, type: raw.type ?? "", message: raw.message ?? line };
    });
  return { baseline, findings };
}

export async function lint(options: GateOptions): Promise<void> {
  const result = await run(bufOf(options), ["lint"], options.root);
  if (result.code !== 0) throw new ApiGateError(`buf lint failed (exit ${result.code}):\n${result.stdout}${result.stderr}`);
}

export const formatFinding = (label: string, finding: Finding): string =>
  `  ${finding.path === "" ? "(module)" : `${finding.path}:${finding.line}`}: ${finding.message} [${finding.type}, against ${label}]`;

async function withScratch<T>(work: (scratch: string) => Promise<T>): Promise<T> {
  const scratch = await mkdtemp(path.join(tmpdir(), "meshwork-api-gate-"));
  try {
    return await work(scratch);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// npm run breaking

export interface BreakingReport {
  readonly results: readonly BaselineResult[];
}

/** buf breaking against every baseline, after checking that the committed image is the recorded one. */
export async function checkBreaking(options: GateOptions): Promise<BreakingReport> {
  await checkRecordedImage(options.root, await readReleaseLog(options.root));
  return withScratch(async (scratch) => {
    const results: BaselineResult[] = [];
    for (const baseline of await baselines(options.root, scratch)) results.push(await breakingAgainst(options, baseline));
    return { results };
  });
}

// ---------------------------------------------------------------------------
// The one override: removing a package after its sunset

const DELETED_FILE = /^Previously present file "([^"]+)" was deleted\.$/;

/**
 * Refuses unless every finding is the deletion of a file of `pkg` (as the
 * baseline knew it), `pkg` is gone from the contracts entirely, and its
 * recorded sunset has passed.
 */
export async function checkSunsetRemoval(options: GateOptions, pkg: string, results: readonly BaselineResult[], log: ReleaseLog, today: string): Promise<void> {
  const last = log.releases.at(-1);
  const record = last?.packages[pkg];
  if (!last || !record) throw new ApiGateError(`--remove-sunset ${pkg}: the last release (${last?.version ?? "none"}) has no package ${pkg}`);
  if (record.sunset === undefined) {
    throw new ApiGateError(`--remove-sunset ${pkg}: release ${last.version} records no sunset for ${pkg}; announce one first (npm run api:release -- <version> --sunset ${pkg}=YYYY-MM-DD)`);
  }
  if (record.sunset > today) throw new ApiGateError(`--remove-sunset ${pkg}: its sunset is ${record.sunset}, not yet passed (today is ${today})`);

  const remaining = (await imageFiles(options, "proto")).filter((file) => !file.isImport && file.package === pkg);
  if (remaining.length > 0) {
    throw new ApiGateError(`--remove-sunset ${pkg} removes the whole package, but ${remaining.map((file) => file.name).join(", ")} still ${remaining.length === 1 ? "declares" : "declare"} it`);
  }

  const others: string[] = [];
  for (const { baseline, findings } of results) {
    const files = new Set((await imageFiles(options, baseline.image)).filter((file) => !file.isImport && file.package === pkg).map((file) => file.name));
    for (const finding of findings) {
      const deleted = finding.type === "FILE_NO_DELETE" ? DELETED_FILE.exec(finding.message)?.[1] : undefined;
      if (deleted === undefined || !files.has(deleted)) others.push(formatFinding(baseline.label, finding));
    }
  }
  if (others.length > 0) {
    throw new ApiGateError(`--remove-sunset ${pkg} forgives only the removal of ${pkg}; these breaking changes remain:\n${others.join("\n")}`);
  }
}

// ---------------------------------------------------------------------------
// npm run api:release -- <version>

export interface ReleaseOptions extends GateOptions {
  readonly version: string;
  /** The override: remove this package, whose sunset has passed. */
  readonly removeSunset?: string;
  /** Packages this release deprecates, with their sunset date. */
  readonly sunsets?: Readonly<Record<string, string>>;
  /** YYYY-MM-DD; today (UTC) unless a test says otherwise. */
  readonly today?: string;
}

export interface ReleaseOutcome {
  readonly record: ReleaseRecord;
  /** What to run next. */
  readonly tagCommand: string;
  readonly comparedWith: readonly string[];
}

export async function releaseApi(options: ReleaseOptions): Promise<ReleaseOutcome> {
  const today = parseDate(options.today ?? todayUtc(), "today");
  parseVersion(options.version);
  const log = await readReleaseLog(options.root);
  const previous = log.releases.at(-1);
  if (previous && compareVersions(options.version, previous.version) <= 0) {
    throw new ApiGateError(`version ${options.version} must be greater than the last release, ${previous.version} (${RELEASE_LOG})`);
  }
  const tag = await lastReleaseTag(options.root);
  if (tag && compareVersions(options.version, tag.version) <= 0) {
    throw new ApiGateError(`version ${options.version} must be greater than the last release tag, ${tag.tag}`);
  }
  await checkRecordedImage(options.root, log);
  await lint(options);

  return withScratch(async (scratch) => {
    const results: BaselineResult[] = [];
    for (const baseline of await baselines(options.root, scratch)) results.push(await breakingAgainst(options, baseline));
    const breaking = results.some((result) => result.findings.length > 0);
    if (options.removeSunset !== undefined) {
      await checkSunsetRemoval(options, options.removeSunset, results, log, today);
    } else if (breaking) {
      const lines = results.flatMap((result) => result.findings.map((finding) => formatFinding(result.baseline.label, finding)));
      throw new ApiGateError(
        `the contracts break the released API, so they cannot be released:\n${lines.join("\n")}\n` +
          "Put the change in a new version package (see api/README.md); the only override is --remove-sunset <package> after that package's sunset.",
      );
    }

    const built = path.join(scratch, "released.binpb");
    const build = await run(bufOf(options), ["build", "proto", "-o", built], options.root);
    if (build.code !== 0) throw new ApiGateError(`buf build proto failed:\n${build.stderr}${build.stdout}`);
    const bytes = await readFile(built);

    const packages: Record<string, PackageRecord> = {};
    for (const file of await imageFiles(options, built)) {
      if (!file.isImport) packages[file.package] = { ...previous?.packages[file.package] };
    }
    for (const [pkg, sunset] of Object.entries(options.sunsets ?? {})) {
      if (!packages[pkg]) throw new ApiGateError(`--sunset ${pkg}: the release has no package ${pkg} (it has ${Object.keys(packages).sort().join(", ")})`);
      parseDate(sunset, `--sunset ${pkg}`);
      if (sunset <= today) throw new ApiGateError(`--sunset ${pkg}=${sunset}: a sunset must be after the release date, ${today}`);
      packages[pkg] = { deprecated: packages[pkg].deprecated ?? today, sunset };
    }
    const sorted = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => a.localeCompare(b)));
    const removed = options.removeSunset === undefined ? [] : [options.removeSunset];
    const record: ReleaseRecord = { version: options.version, date: today, sha256: sha256(bytes), packages: sorted, removed };

    // Written beside its final place, then renamed: an interrupted release never leaves half an image.
    await mkdir(path.join(options.root, RELEASE_ARCHIVE), { recursive: true });
    for (const target of [path.join(options.root, archivedImage(options.version)), path.join(options.root, RELEASED_IMAGE)]) {
      await writeFile(`${target}.next`, bytes);
      await rename(`${target}.next`, target);
    }
    await writeFile(path.join(options.root, RELEASE_LOG), `${JSON.stringify({ releases: [...log.releases, record] }, null, 2)}\n`);
    await mkdir(path.dirname(path.join(options.root, LIFECYCLE_MODULE)), { recursive: true });
    await writeFile(path.join(options.root, LIFECYCLE_MODULE), lifecycleModule(record));
    return { record, tagCommand: `git tag ${TAG_PREFIX}${options.version}`, comparedWith: results.map((result) => result.baseline.label) };
  });
}
