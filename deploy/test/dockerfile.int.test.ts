/** The image's own command (tini, node on the compiled service, the HEALTHCHECK's compiled probe) run on this machine, as a container would run it. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { beforeAll, describe, test } from "vitest";
import { needs } from "@meshwork/testing";
import { parseDockerfile, SERVICE_ARGUMENT, words } from "../dockerfile-rules.js";
import { buildService } from "../../scripts/build-service.js";

const root = path.resolve(import.meta.dirname, "../..");
const dockerfile = readFileSync(path.join(root, "Dockerfile"), "utf8");

/** The runtime stage's ENV (with ${SERVICE} filled in), ENTRYPOINT + CMD and HEALTHCHECK command. */
function containerCommand(service: string) {
  const stage = parseDockerfile(dockerfile).stages.find((candidate) => candidate.name === "service")!;
  const env: Record<string, string> = {};
  for (const instruction of stage.instructions.filter((candidate) => candidate.getKeyword() === "ENV")) {
    for (const pair of words(instruction)) {
      const [key, ...value] = pair.split("=");
      env[key!] = value.join("=").replaceAll(SERVICE_ARGUMENT, service);
    }
  }
  const last = (keyword: string) => {
    const found = stage.instructions.filter((candidate) => candidate.getKeyword() === keyword).at(-1);
    assert.ok(found, `the service stage has a ${keyword}`);
    return JSON.parse(`[${found.getArgumentsContent()!.replace(/^\[|\]$/g, "")}]`) as string[];
  };
  const healthcheck = stage.instructions.find((candidate) => candidate.getKeyword() === "HEALTHCHECK")!;
  const probe = JSON.parse(healthcheck.getArgumentsContent()!.replace(/^[\s\S]*?CMD\s*/, "")) as string[];
  return { env, command: [...last("ENTRYPOINT"), ...last("CMD")], probe };
}

function run(command: readonly string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(command[0]!, command.slice(1), { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk));
  return once(child, "close").then(([code]) => ({ code: code as number | null, output }));
}

describe("the image's command, run on this machine", () => {
  // What the image's build stage does: services/identity/dist/main.js and scripts/dist/health-probe.js.
  beforeAll(() => buildService("identity"), 60_000);

  test("tini delivers SIGTERM to the service, which shuts down gracefully; the HEALTHCHECK passes only while it serves", async (t) => {
    const { env, command, probe } = containerCommand("identity");
    if (!needs(t, command[0]!, existsSync(command[0]!) ? undefined : "apt-get install tini")) return;
    assert.equal(env.MESHWORK_SERVICE, "identity");
    // The container's environment, pointed at an embedded database and a free port.
    const serviceEnv = { ...env, NODE_ENV: "production", IDENTITY_PORT: "0", IDENTITY_HOST: "127.0.0.1", IDENTITY_DATA_DIR: "memory://" };
    const child = spawn(command[0]!, command.slice(1), { cwd: root, env: { ...process.env, ...serviceEnv }, stdio: ["ignore", "pipe", "inherit"] });
    t.onTestFinished(async () => {
      await child.kill("SIGKILL");
    });
    const lines: Record<string, unknown>[] = [];
    const reader = createInterface({ input: child.stdout });
    const closed = once(reader, "close");
    const port = await new Promise<number>((resolve, reject) => {
      child.once("exit", (code) => reject(new Error(`the container command exited with ${code} before serving`)));
      reader.on("line", (line) => {
        const entry = JSON.parse(line) as Record<string, unknown>;
        lines.push(entry);
        if (entry.msg === "identity serving") resolve(entry.port as number);
      });
    });

    const healthy = await run(probe, { ...serviceEnv, IDENTITY_PORT: String(port) });
    assert.equal(healthy.code, 0, healthy.output);
    assert.match(healthy.output, /SERVING/);

    const exited = once(child, "exit");
    child.kill("SIGTERM"); // to tini, as `docker stop` does
    const [code] = (await exited) as [number | null];
    await closed;
    assert.equal(code, 0);
    assert.equal(lines.find((entry) => entry.msg === "shutting down")?.reason, "SIGTERM");
    assert.equal(lines.find((entry) => entry.msg === "shutdown complete")?.ok, true);

    const gone = await run(probe, { ...serviceEnv, IDENTITY_PORT: String(port) });
    assert.equal(gone.code, 1, gone.output);
  });
});
