/**
 * Running compose.yaml from scripts and tests: which compose command exists
 * (`docker compose` v2, else Debian's docker-compose 1.29), whether images
 * can be pulled (else the stand-ins and compose.offline.yaml), and the
 * lifecycle `npm run compose:up|down|test` share: build, up, wait until every
 * container is healthy, inspect, tear down. The project is always named
 * "meshwork", so every command finds the same containers whatever the
 * checkout's folder is called.
 */
import { execFile, spawn, spawnSync } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";

export const ROOT = path.resolve(import.meta.dirname, "../..");
export const PROJECT = "meshwork";
const run = promisify(execFile);

export interface ComposeSetup {
  /** The compose program and the arguments before a subcommand. */
  readonly command: readonly string[];
  /** True when the stand-ins and compose.offline.yaml are used. */
  readonly offline: boolean;
}

/** docker compose v2 when the plugin is there, else docker-compose (1.29 on Debian). */
function composeProgram(): string[] {
  if (spawnSync("docker", ["compose", "version"], { stdio: "ignore" }).status === 0) return ["docker", "compose"];
  if (spawnSync("docker-compose", ["version"], { stdio: "ignore" }).status === 0) return ["docker-compose"];
  throw new Error("neither `docker compose` nor `docker-compose` is installed (Debian: apt-get install docker.io docker-compose)");
}

/** Whether Docker Hub answers; MESHWORK_COMPOSE_OFFLINE=1 or 0 decides instead. */
export async function registryReachable(): Promise<boolean> {
  const forced = process.env.MESHWORK_COMPOSE_OFFLINE;
  if (forced === "1") return false;
  if (forced === "0") return true;
  try {
    await fetch("https://registry-1.docker.io/v2/", { signal: AbortSignal.timeout(5000) });
    return true; // any answer, 401 included: the registry is there
  } catch {
    return false;
  }
}

export function dockerRunning(): boolean {
  return spawnSync("docker", ["info"], { stdio: "ignore" }).status === 0;
}

export async function composeSetup(): Promise<ComposeSetup> {
  if (!dockerRunning()) throw new Error("the Docker daemon does not answer (`docker info` failed): start it (`dockerd &` where there is no init system)");
  const offline = !(await registryReachable());
  const files = ["-f", path.join(ROOT, "compose.yaml"), ...(offline ? ["-f", path.join(ROOT, "compose.offline.yaml")] : [])];
  return { command: [...composeProgram(), "-p", PROJECT, "--project-directory", ROOT, ...files], offline };
}

/** Runs a compose subcommand with its output on this process's. */
export function composeInherit(setup: ComposeSetup, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<void> {
  const [program, ...rest] = setup.command;
  return new Promise((resolve, reject) => {
    const child = spawn(program!, [...rest, ...args], { cwd: ROOT, stdio: "inherit", env: { ...process.env, DOCKER_BUILDKIT: "0", COMPOSE_DOCKER_CLI_BUILD: "0", ...env } });
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${setup.command.join(" ")} ${args.join(" ")} exited with ${code}`))));
  });
}

/** Runs a compose subcommand and returns its standard output. */
export async function compose(setup: ComposeSetup, args: readonly string[]): Promise<string> {
  const [program, ...rest] = setup.command;
  const { stdout } = await run(program!, [...rest, ...args], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

export async function docker(args: readonly string[]): Promise<string> {
  const { stdout } = await run("docker", args, { maxBuffer: 64 * 1024 * 1024 });
  return stdout.trim();
}

export interface ContainerState {
  readonly id: string;
  /** The compose service (gateway, notifications-1, postgres, ...). */
  readonly service: string;
  readonly status: string;
  /** healthy, unhealthy, starting, or "none" without a health check. */
  readonly health: string;
  readonly exitCode: number;
  readonly restartCount: number;
  readonly pid: number;
  readonly startedAt: string;
  readonly image: string;
  /** When the first successful health probe ended, if one has. */
  readonly firstHealthyAt: string | undefined;
  readonly networks: readonly string[];
}

interface InspectJson {
  Id: string;
  Image: string;
  RestartCount: number;
  Config: { Labels: Record<string, string> };
  State: { Status: string; ExitCode: number; Pid: number; StartedAt: string; Health?: { Status: string; Log?: { End: string; ExitCode: number }[] } };
  NetworkSettings: { Networks: Record<string, unknown> };
}

/** Every container of the project, running or not. */
export async function containers(): Promise<ContainerState[]> {
  const ids = (await docker(["ps", "-aq", "--filter", `label=com.docker.compose.project=${PROJECT}`])).split("\n").filter(Boolean);
  if (ids.length === 0) return [];
  const inspected = JSON.parse(await docker(["inspect", ...ids])) as InspectJson[];
  return inspected.map((container) => ({
    id: container.Id,
    service: container.Config.Labels["com.docker.compose.service"] ?? "",
    status: container.State.Status,
    health: container.State.Health?.Status ?? "none",
    exitCode: container.State.ExitCode,
    restartCount: container.RestartCount,
    pid: container.State.Pid,
    startedAt: container.State.StartedAt,
    image: container.Image,
    firstHealthyAt: container.State.Health?.Log?.find((entry) => entry.ExitCode === 0 && entry.End >= container.State.StartedAt)?.End,
    networks: Object.keys(container.NetworkSettings.Networks),
  }));
}

/** A container that has done its job: running and healthy (or running with no check), or a one-shot that exited 0. */
const settled = (container: ContainerState, oneShots: ReadonlySet<string>) =>
  oneShots.has(container.service) ? container.status === "exited" && container.exitCode === 0 : container.status === "running" && (container.health === "healthy" || container.health === "none");

/** One-shot services: run once, exit 0 (secrets: compose.yaml's secret generator). */
export const ONE_SHOTS: ReadonlySet<string> = new Set(["consul-seed", "secrets"]);

/** Waits until every container of the project is healthy; names the ones that are not when the time is up. */
export async function waitHealthy(timeoutMs: number, only?: readonly string[]): Promise<ContainerState[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const all = (await containers()).filter((container) => !only || only.includes(container.service));
    const waiting = all.filter((container) => !settled(container, ONE_SHOTS));
    if (all.length > 0 && waiting.length === 0) return all;
    const failed = all.filter((container) => ONE_SHOTS.has(container.service) && container.status === "exited" && container.exitCode !== 0);
    if (failed.length > 0 || Date.now() > deadline) {
      const why = (
        all.length === 0 ? ["no containers"] : waiting.map((c) => `${c.service}: ${c.status}${c.health !== "none" ? `/${c.health}` : ""}${c.status === "exited" ? ` (exit ${c.exitCode})` : ""}`)
      ).join(", ");
      throw new Error(`${failed.length > 0 ? "a one-shot container failed" : `not healthy within ${timeoutMs / 1000} s`}: ${why}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/**
 * `up -d`, watching every container from the moment it is created until all
 * are healthy, so each one's first passing probe is seen: Docker keeps only
 * the last five probe results, and compose 1.29's `up` itself waits for the
 * health of dependencies, so reading them afterwards would miss the first
 * success of a container probed every second or two.
 */
export async function upAndWaitHealthy(setup: ComposeSetup, timeoutMs: number): Promise<ContainerState[]> {
  const firstSuccess = new Map<string, string>();
  let upDone = false;
  let upError: unknown;
  const upping = composeInherit(setup, ["up", "-d", "--no-build"]).then(
    () => {
      upDone = true;
    },
    (error: unknown) => {
      upDone = true;
      upError = error;
    },
  );
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const all = await containers();
    for (const container of all) {
      if (container.firstHealthyAt && !firstSuccess.has(container.id)) firstSuccess.set(container.id, container.firstHealthyAt);
    }
    if (upDone) {
      await upping;
      if (upError) throw upError;
      const settledAll = all.length > 0 && all.every((container) => settled(container, ONE_SHOTS));
      if (settledAll) return all.map((container) => ({ ...container, firstHealthyAt: firstSuccess.get(container.id) ?? container.firstHealthyAt }));
    }
    if (Date.now() > deadline) {
      await upping;
      return waitHealthy(0);
    }
    await new Promise((resolve) => setTimeout(resolve, 400));
  }
}

/** Seconds from a container's start to its first successful health probe. */
function startToHealthy(container: ContainerState): number | undefined {
  if (!container.firstHealthyAt) return undefined;
  return (Date.parse(container.firstHealthyAt) - Date.parse(container.startedAt)) / 1000;
}

/** Image sizes by repository:tag of the project's own images (meshwork/*). */
async function imageSizes(): Promise<Map<string, number>> {
  const lines = (await docker(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}\t{{.ID}}", "meshwork/*"])).split("\n").filter(Boolean);
  const sizes = new Map<string, number>();
  for (const line of lines) {
    const [name] = line.split("\t");
    sizes.set(name!, Number(await docker(["image", "inspect", "--format", "{{.Size}}", name!])));
  }
  return sizes;
}

/**
 * Builds the stand-ins when offline (scripts/standins.ts), then every image
 * compose names, one after another: the images share their first stages, and
 * built in turn the second and later find them in the layer cache (in
 * parallel, each would install them again, on two cores). `quiet` prints only
 * errors (the legacy builder logs every step).
 */
export async function buildAll(setup: ComposeSetup, options: { quiet?: boolean } = {}): Promise<void> {
  if (setup.offline) {
    const { ensureStandins } = await import("../standins.js");
    ensureStandins();
  }
  await composeInherit(setup, ["build", ...(options.quiet ? ["--quiet"] : [])]);
}

/** Stops and removes the project's containers and networks (and volumes unless kept). */
export async function down(setup: ComposeSetup, options: { volumes: boolean }): Promise<void> {
  await composeInherit(setup, ["down", "--remove-orphans", "-t", "20", ...(options.volumes ? ["-v"] : [])]);
}

/** The volumes the project's containers mount, named or anonymous (anonymous ones carry no project label). */
async function mountedVolumes(): Promise<string[]> {
  const ids = (await docker(["ps", "-aq", "--filter", `label=com.docker.compose.project=${PROJECT}`])).split("\n").filter(Boolean);
  if (ids.length === 0) return [];
  const inspected = JSON.parse(await docker(["inspect", ...ids])) as { Mounts: { Type: string; Name?: string }[] }[];
  return [...new Set(inspected.flatMap((container) => container.Mounts.filter((mount) => mount.Type === "volume" && mount.Name).map((mount) => mount.Name!)))];
}

/**
 * What the project still has in Docker: containers, networks and volumes
 * (all gone after `down -v`), and those of `alsoVolumes` (mountedVolumes,
 * read before the `down`) that remain.
 */
async function leftovers(alsoVolumes: readonly string[] = []): Promise<string[]> {
  const label = `label=com.docker.compose.project=${PROJECT}`;
  const list = async (kind: string, args: readonly string[]) =>
    (await docker(args))
      .split("\n")
      .filter(Boolean)
      .map((name) => `${kind} ${name}`);
  const volumes = new Set((await docker(["volume", "ls", "--format", "{{.Name}}"])).split("\n").filter(Boolean));
  const labelled = await list("volume", ["volume", "ls", "--filter", label, "--format", "{{.Name}}"]);
  return [
    ...(await list("container", ["ps", "-a", "--filter", label, "--format", "{{.Names}}"])),
    ...(await list("network", ["network", "ls", "--filter", label, "--format", "{{.Name}}"])),
    ...labelled,
    ...alsoVolumes.filter((name) => volumes.has(name) && !labelled.includes(`volume ${name}`)).map((name) => `volume ${name}`),
  ];
}

/** What compose:up and the compose test print once all is healthy: each image's size, each container's start-to-healthy time. */
export async function readyReport(ready: readonly ContainerState[]): Promise<string[]> {
  const sizes = await imageSizes();
  return [
    ...[...sizes].sort().map(([name, bytes]) => `  image ${name.padEnd(28)} ${(bytes / 1e6).toFixed(0)} MB`),
    ...ready
      .filter((container) => container.health !== "none")
      .sort((a, b) => a.service.localeCompare(b.service))
      .map((container) => `  start-to-healthy ${container.service.padEnd(16)} ${startToHealthy(container)?.toFixed(1) ?? "?"} s`),
  ];
}

/** `down -v`, then fails naming whatever of the project is still in Docker (anonymous volumes included). */
export async function downCompletely(setup: ComposeSetup): Promise<void> {
  const mounted = await mountedVolumes();
  await down(setup, { volumes: true });
  const left = await leftovers(mounted);
  if (left.length > 0) throw new Error(`still there after down -v: ${left.join(", ")}`);
}
