/** compose's Prometheus configuration, checked by Prometheus' own promtool. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { test } from "vitest";
import { needs } from "@meshwork/testing";

const root = path.resolve(import.meta.dirname, "../..");

test("promtool accepts compose's Prometheus configuration", async (t) => {
  if (!needs(t, "promtool", existsSync("/usr/bin/promtool") ? undefined : "apt-get install prometheus")) return;
  const { stdout } = await promisify(execFile)("promtool", ["check", "config", "--syntax-only", path.join(root, "deploy/prometheus/prometheus.yml")]);
  assert.match(stdout, /SUCCESS/);
});
