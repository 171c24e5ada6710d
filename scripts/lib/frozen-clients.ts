/**
 * The frozen v1 clients (test/fixtures/frozen-v1/): the TypeScript client and
 * the Python stubs as a release shipped them, generated from that release's
 * image (api/releases/<version>.binpb), never from proto/. Tests drive the current build
 * with them, so a change that breaks a shipped client fails even if someone
 * edits proto/ and regenerates packages/contracts to match.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { ApiGateError, DEFAULT_BUF, imageFiles, RELEASED_IMAGE, readReleaseLog, releasedImage } from "./api-gate.js";

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

/**
 * At a release only: regenerates the fixtures from api/released.binpb, which
 * must be the image the last release recorded (so never from the working tree).
 */
export async function freezeClients(root: string): Promise<FrozenManifest> {
  const log = await readReleaseLog(root);
  const last = log.releases.at(-1);
  if (!last) throw new ApiGateError("no release is recorded in api/releases.json: run npm run api:release first");
  const actual = await sha256Of(path.join(root, RELEASED_IMAGE));
  if (actual !== last.sha256) throw new ApiGateError(`${RELEASED_IMAGE} is not the image release ${last.version} recorded: the frozen clients come from a released image only`);
  const image = await releasedImage(root, log, last.version);
  await generateFrozenClients(root, image, path.join(root, FROZEN_DIR));
  const manifest: FrozenManifest = { release: last.version, imageSha256: actual };
  await writeFile(path.join(root, FROZEN_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}
