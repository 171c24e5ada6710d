/**
 * `npm run compose:test`: the shop in containers (compose.yaml, built and
 * started by test/compose/setup.ts, torn down after, whatever happened). One
 * file, its tests in order: each leaves the running compose as the next
 * expects. Needs a Docker engine; .ci/run provides one.
 */
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/compose/**/*.compose.test.ts"],
    pool: "forks",
    fileParallelism: false,
    globalSetup: ["test/compose/setup.ts"],
    reporters: ["default", "./test/support/summary-reporter.ts"],
    testTimeout: 240_000,
    hookTimeout: 240_000,
  },
});
