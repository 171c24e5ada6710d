/**
 * The frozen v1 clients (test/fixtures/frozen-v1/): the TypeScript client and
 * the Python stubs as the release that first shipped the v1 packages (1.0.0)
 * shipped them, generated from that release's image
 * (api/releases/<version>.binpb), never from proto/. Tests drive the current
 * build with them, so a change that breaks a shipped client fails even if
 * someone edits proto/ and regenerates packages/contracts to match.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { ApiGateError, DEFAULT_BUF, imageFiles, RELEASE_LOG, RELEASED_IMAGE, readReleaseLog, releasedImage, type ReleaseLog, type ReleaseRecord } from "./api-gate.js";

export const FROZEN_DIR = "test/fixtures/frozen-v1";
export const FROZEN_MANIFEST = `${FROZEN_DIR}/frozen.json`;
/** Debian's protoc and gRPC plugin (protobuf-compiler, protobuf-compiler-grpc): the Python stubs' generator. */
export const PROTOC = "/usr/bin/protoc";
export const GRPC_PYTHON_PLUGIN = "/usr/bin/grpc_python_plugin";
const PROCESS_TIMEOUT_MS = 60_000;

export interface FrozenManifest {
  /** The release whose image the clients were generated from. */
  readonly release: string;
  readonly imageSha256: string;
}

function run(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"], timeout: PROCESS_TIMEOUT_MS, killSignal: "SIGKILL" });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    child.once("error", (error) => reject(new ApiGateError(`${command} could not start: ${error.message}`)));
    child.once("close", (code) => (code === 0 ? resolve() : reject(new ApiGateError(`${path.basename(command)} ${args.join(" ")} failed (exit ${code}):\n${out}`))));
  });
}

/**
 * Generates both clients from `image` into `outDir` (ts/ and python/, each
 * emptied first). `root` is the repository: its node_modules hold
 * protoc-gen-es.
 */
export async function generateFrozenClients(root: string, image: string, outDir: string): Promise<void> {
  const ts = path.join(outDir, "ts");
  const python = path.join(outDir, "python");
  await Promise.all([rm(ts, { recursive: true, force: true }), rm(python, { recursive: true, force: true })]);
  await mkdir(python, { recursive: true });

  // A template given inline, so no buf.gen.yaml could point the generator at proto/ instead of the image.
  const template = JSON.stringify({ version: "v2", plugins: [{ local: "protoc-gen-es", out: ts, opt: ["target=ts", "import_extension=js"] }] });
  const bin = path.join(root, "node_modules", ".bin");
  await run(DEFAULT_BUF, ["generate", image, "--template", template], root, { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ""}` });

  // protoc reads a Buf image as a FileDescriptorSet (buf's own extension is an unknown field to it).
  const files = (await imageFiles({ root }, image)).filter((file) => !file.isImport).map((file) => file.name);
  await run(PROTOC, [`--descriptor_set_in=${image}`, `--python_out=${python}`, `--grpc_python_out=${python}`, `--plugin=protoc-gen-grpc_python=${GRPC_PYTHON_PLUGIN}`, ...files], root);
}

export const sha256Of = async (file: string): Promise<string> =>
  createHash("sha256")
    .update(await readFile(file))
    .digest("hex");

const V1_PACKAGE = /^shop\.[a-z0-9_]+\.v1$/;

/**
 * The release whose clients the fixtures hold. They are frozen once, from the
 * first release that shipped the v1 packages: a later release's v1 is the same
 * plus additions (the gate sees to it), and its other packages (shop.orders.v2
 * from 1.1.0) are nothing a v1 client ever knew. So once frozen.json names a
 * release, that release stays, and freezing again regenerates its clients from
 * its own image (after a generator upgrade), never a later release's.
 */
export function frozenRelease(log: ReleaseLog, manifest: FrozenManifest | undefined): ReleaseRecord {
  if (manifest) {
    const named = log.releases.find((release) => release.version === manifest.release);
    if (!named) throw new ApiGateError(`${FROZEN_MANIFEST} names release ${manifest.release}, which ${RELEASE_LOG} does not record`);
    if (named.sha256 !== manifest.imageSha256) throw new ApiGateError(`${FROZEN_MANIFEST}'s image is not the one release ${manifest.release} recorded in ${RELEASE_LOG}`);
    return named;
  }
  const first = log.releases.find((release) => Object.keys(release.packages).some((pkg) => V1_PACKAGE.test(pkg)));
  if (!first) throw new ApiGateError("no recorded release ships a shop.*.v1 package: there is no v1 client to freeze");
  return first;
}

async function readManifest(root: string): Promise<FrozenManifest | undefined> {
  try {
    return JSON.parse(await readFile(path.join(root, FROZEN_MANIFEST), "utf8")) as FrozenManifest;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/**
 * Writes the fixtures from the image of frozenRelease(): the first release
 * with v1 packages, or the release frozen.json already names. Refused unless
 * api/released.binpb is the image the last release recorded (so never from
 * the working tree) and that release's archived image is the recorded one.
 */
export async function freezeClients(root: string): Promise<FrozenManifest> {
  const log = await readReleaseLog(root);
  const last = log.releases.at(-1);
  if (!last) throw new ApiGateError("no release is recorded in api/releases.json: run npm run api:release first");
  const actual = await sha256Of(path.join(root, RELEASED_IMAGE));
  if (actual !== last.sha256) throw new ApiGateError(`${RELEASED_IMAGE} is not the image release ${last.version} recorded: the frozen clients come from a released image only`);
  const release = frozenRelease(log, await readManifest(root));
  const image = await releasedImage(root, log, release.version);
  await generateFrozenClients(root, image, path.join(root, FROZEN_DIR));
  const manifest: FrozenManifest = { release: release.version, imageSha256: release.sha256 };
  await writeFile(path.join(root, FROZEN_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}
