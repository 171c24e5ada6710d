import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fixed, formatTable } from "./stats.js";

/** The parts of a V8 .cpuprofile this summary reads. */
interface CpuProfile {
  readonly nodes: readonly {
    readonly id: number;
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  }[];
  /** µs on the monotonic clock that process.hrtime reads. */
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** A span on the profiled process's monotonic clock, µs. */
export interface ProfileWindow {
  readonly fromUs: number;
  readonly toUs: number;
}

export interface SummaryOptions {
  /** Count only samples inside these spans (the measure windows); the whole profile when empty. */
  readonly windows: readonly ProfileWindow[];
  /** Calls served inside the windows, to express the CPU per call. */
  readonly calls: number;
  readonly topFunctions?: number;
}

const REPO_ROOT = path.resolve(import.meta.dirname, "..");

/**
 * The main thread's profile in a --cpu-prof directory. Node names files
 * CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile; the main thread is 0
 * (tsx's loader runs on another thread and writes a profile of its own).
 */
export async function findMainThreadProfile(dir: string): Promise<string | undefined> {
  const names = (await readdir(dir)).filter((name) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(name)).sort();
  const last = names.at(-1);
  return last === undefined ? undefined : path.join(dir, last);
}

/** Who owns the code a sample fell in: an npm package, a Meshwork workspace, node itself or V8. */
function owner(url: string, functionName: string): string {
  if (url === "") return functionName.startsWith("(") ? `v8 ${functionName}` : "v8/native builtins";
  if (url.startsWith("node:")) return "node (internals)";
  const file = url.startsWith("file://") ? new URL(url).pathname : url;
  const inModules = file.lastIndexOf("/node_modules/");
  if (inModules >= 0) {
    const [first = "", second = ""] = file.slice(inModules + "/node_modules/".length).split("/");
    return first.startsWith("@") ? `${first}/${second}` : first;
  }
  const relative = path.relative(REPO_ROOT, file);
  const [top = "", name = ""] = relative.split(path.sep);
  return top === "packages" || top === "services" ? `@meshwork/${name}` : relative;
}

function where(url: string, line: number): string {
  if (url === "") return "";
  const file = url.startsWith("file://") ? new URL(url).pathname : url;
  const inModules = file.lastIndexOf("/node_modules/");
  const short = inModules >= 0 ? file.slice(inModules + "/node_modules/".length) : path.relative(REPO_ROOT, file) || file;
  // Line of the code V8 ran: for TypeScript, tsx's output, close to but not always the source line.
  return `${short}:${line + 1}`;
}

/**
 * Self time of a CPU profile inside the measure windows, idle excluded: by
 * owner (which package the CPU went to) and the top functions, as a share and
 * in µs per call. Lines are ready to print.
 */
export async function summarizeCpuProfile(file: string, options: SummaryOptions): Promise<string[]> {
  const profile = JSON.parse(await readFile(file, "utf8")) as CpuProfile;
  const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  // Windows must lie on the profile's clock; if they do not (another clock
  // source), the whole profile is summarized and the heading says so.
  const windows = options.windows.filter((window) => window.fromUs >= profile.startTime && window.toUs <= profile.endTime);
  const windowed = windows.length > 0 && windows.length === options.windows.length;
  const inWindow = (at: number): boolean => !windowed || windows.some((window) => at >= window.fromUs && at < window.toUs);

  const byFunction = new Map<string, number>();
  const byOwner = new Map<string, number>();
  let busyUs = 0;
  let at = profile.startTime;
  profile.samples.forEach((nodeId, index) => {
    at += profile.timeDeltas[index] ?? 0;
    // timeDeltas[i + 1] is the time from sample i to the next: sample i's self time.
    const us = profile.timeDeltas[index + 1] ?? 0;
    const frame = frames.get(nodeId);
    if (!frame || frame.functionName === "(idle)" || !inWindow(at)) return;
    busyUs += us;
    const who = owner(frame.url, frame.functionName);
    byOwner.set(who, (byOwner.get(who) ?? 0) + us);
    const key = `${frame.functionName || "(anonymous)"}  ${where(frame.url, frame.lineNumber)}`.trimEnd();
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
  });

  const share = (us: number): string => `${fixed((100 * us) / Math.max(1, busyUs), 1)}%`;
  const perCall = (us: number): string => (windowed && options.calls > 0 ? fixed(us / options.calls, 1) : "-");
  const owners = [...byOwner].sort((a, b) => b[1] - a[1]).filter(([, us]) => us / Math.max(1, busyUs) >= 0.005);
  const functions = [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, options.topFunctions ?? 20);
  return [
    windowed
      ? `busy CPU in the ${windows.length} measure window(s): ${fixed(busyUs / 1000, 0)} ms for ${options.calls} calls = ${perCall(busyUs)} µs/call (idle excluded)`
      : `busy CPU over the whole process life (the measure windows could not be placed on the profile's clock): ${fixed(busyUs / 1000, 0)} ms`,
    ...formatTable(
      ["self time by owner", "share", "µs/call"],
      owners.map(([who, us]) => [who, share(us), perCall(us)]),
    ),
    "",
    ...formatTable(
      ["top functions by self time", "share", "µs/call"],
      functions.map(([key, us]) => [key, share(us), perCall(us)]),
    ),
  ];
}
