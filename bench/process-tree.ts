/**
 * Resident memory of a process and all its descendants, from /proc (Linux):
 * what `npm start` costs the machine is npm, the shell it runs the script
 * in, any wrapper and the service process together, not the last one alone.
 * The parsing is pure and tested; `treeRss` reads /proc.
 */
import { readdir, readFile } from "node:fs/promises";

/** The parent pid in the text of /proc/<pid>/stat; undefined when it cannot be read. */
export function parentPidFromStat(stat: string): number | undefined {
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so fields count from the last ")".
  const close = stat.lastIndexOf(")");
  if (close < 0) return undefined;
  const fields = stat
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const ppid = Number(fields[1]);
  return Number.isInteger(ppid) ? ppid : undefined;
}

/**
 * CPU time of the process and of its children it has waited for (utime,
 * stime, cutime, cstime), in clock ticks, from the text of /proc/<pid>/stat.
 */
export function cpuTicksFromStat(stat: string): number {
  const fields = stat
    .slice(stat.lastIndexOf(")") + 1)
    .trim()
    .split(/\s+/);
  // After the comm: state is field 3 of the line, utime 14 … cstime 17.
  return [11, 12, 13, 14].reduce((sum, index) => sum + (Number(fields[index]) || 0), 0);
}

/** VmRSS in kB from the text of /proc/<pid>/status; 0 when absent (a zombie, a kernel thread). */
export function vmRssKbFromStatus(status: string): number {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  return match ? Number(match[1]) : 0;
}

/** The process name (Name:) in the text of /proc/<pid>/status. */
export function nameFromStatus(status: string): string {
  return /^Name:\s*(.*)$/m.exec(status)?.[1]?.trim() ?? "?";
}

/** `root` and every process below it, given each process's parent; root first, then breadth first. */
export function treeOf(root: number, parents: ReadonlyMap<number, number>): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, parent] of parents) {
    if (pid === parent) continue;
    const list = children.get(parent);
    if (list) list.push(pid);
    else children.set(parent, [pid]);
  }
  const tree = [root];
  const seen = new Set(tree);
  for (let index = 0; index < tree.length; index++) {
    for (const child of children.get(tree[index]!) ?? []) {
      if (seen.has(child)) continue;
      seen.add(child);
      tree.push(child);
    }
  }
  return tree;
}

export interface ProcessRss {
  readonly pid: number;
  readonly name: string;
  readonly rssKb: number;
  /** CPU so far, clock ticks (see cpuTicksFromStat). */
  readonly cpuTicks: number;
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ: 100 on Linux everywhere that matters here). */
export const TICKS_PER_SECOND = 100;

/** Sum of the processes' resident kB. */
export const totalRssKb = (processes: readonly ProcessRss[]): number => processes.reduce((sum, process) => sum + process.rssKb, 0);

/** Sum of the processes' CPU, seconds. */
export const totalCpuSeconds = (processes: readonly ProcessRss[]): number => processes.reduce((sum, process) => sum + process.cpuTicks, 0) / TICKS_PER_SECOND;

const readOrUndefined = (file: string): Promise<string | undefined> => readFile(file, "utf8").catch(() => undefined);

/** Resident memory of `root` and its descendants now; a process that ends while read is left out. */
export async function treeRss(root: number): Promise<ProcessRss[]> {
  const pids = (await readdir("/proc")).filter((entry) => /^\d+$/.test(entry)).map(Number);
  const parents = new Map<number, number>();
  const stats = new Map<number, string>();
  await Promise.all(
    pids.map(async (pid) => {
      const stat = await readOrUndefined(`/proc/${pid}/stat`);
      const parent = stat === undefined ? undefined : parentPidFromStat(stat);
      if (parent === undefined) return;
      parents.set(pid, parent);
      stats.set(pid, stat!);
    }),
  );
  if (!parents.has(root)) return [];
  const processes = await Promise.all(
    treeOf(root, parents).map(async (pid) => {
      const status = await readOrUndefined(`/proc/${pid}/status`);
      return status === undefined ? undefined : { pid, name: nameFromStatus(status), rssKb: vmRssKbFromStatus(status), cpuTicks: cpuTicksFromStat(stats.get(pid) ?? "") };
    }),
  );
  return processes.filter((process) => process !== undefined);
}
