import assert from "node:assert/strict";
import { test } from "vitest";
import { cpuTicksFromStat, nameFromStatus, parentPidFromStat, totalCpuSeconds, totalRssKb, treeOf, vmRssKbFromStatus } from "./process-tree.js";

test("the parent pid is read after the last parenthesis, whatever the command name holds", () => {
  assert.equal(parentPidFromStat("8688 (node) S 8675 8656 8656 0 -1 4194560 5096 0"), 8675);
  assert.equal(parentPidFromStat("42 (npm (start) x) R 7 42 42 0 -1"), 7);
  assert.equal(parentPidFromStat("no parenthesis here"), undefined);
});

test("CPU is utime + stime + cutime + cstime, counted after the command name", () => {
  // fields: pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime …
  assert.equal(cpuTicksFromStat("8688 (node x) S 8675 8656 8656 0 -1 4194560 5096 0 12 0 300 40 7 3 20 0 11"), 350);
});

test("VmRSS is read in kB, and a process without one (a zombie) counts 0", () => {
  const status = "Name:\tnode\nUmask:\t0022\nState:\tS (sleeping)\nVmPeak:\t 1234 kB\nVmRSS:\t  446344 kB\nRssAnon:\t 300000 kB\n";
  assert.equal(vmRssKbFromStatus(status), 446344);
  assert.equal(nameFromStatus(status), "node");
  assert.equal(vmRssKbFromStatus("Name:\tsh\nState:\tZ (zombie)\n"), 0);
});

test("the tree is the root and every descendant, and nothing beside it", () => {
  // 1 ─ 10 (npm) ─ 11 (sh) ─ 12 (tsx) ─ 13 (node) ─ 14 (esbuild); 1 ─ 20 (another process); 10 ─ 15
  const parents = new Map([
    [10, 1],
    [11, 10],
    [12, 11],
    [13, 12],
    [14, 13],
    [15, 10],
    [20, 1],
    [1, 0],
  ]);
  assert.deepEqual(treeOf(10, parents), [10, 11, 15, 12, 13, 14]);
  assert.deepEqual(treeOf(13, parents), [13, 14]);
  assert.deepEqual(treeOf(99, parents), [99]);
  assert.equal(
    totalRssKb([
      { pid: 10, name: "npm", rssKb: 58_000, cpuTicks: 30 },
      { pid: 13, name: "node", rssKb: 446_000, cpuTicks: 0 },
    ]),
    504_000,
  );
  assert.equal(totalCpuSeconds([{ pid: 10, name: "npm", rssKb: 1, cpuTicks: 250 }]), 2.5);
});

test("a cycle in the parent map (pid reuse mid-read) does not loop", () => {
  assert.deepEqual(
    treeOf(
      1,
      new Map([
        [2, 1],
        [1, 2],
      ]),
    ),
    [1, 2],
  );
});
