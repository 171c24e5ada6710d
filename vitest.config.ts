/**
 * The test system: three vitest projects, told apart by file name.
 *
 * - unit   `*.test.ts`: pure code and in-memory adapters, PGlite included (one
 *          per worker, a schema per test: @meshwork/testing's
 *          openEmbeddedTestDatabase); no servers of whole services.
 * - int    `*.int.test.ts`: real PostgreSQL, RabbitMQ, Chromium, Prometheus,
 *          Python, child processes, and whole services started in-process.
 * - serial `*.serial.test.ts`: restarts the shared broker, kills and restarts
 *          processes (chaos, the crash test): one file at a time, after the
 *          other two, so nothing else stretches the timing they measure.
 *
 * Files run in forked processes (grpc-js, PGlite and the services keep
 * process-wide state; forks also let a test kill and restart children).
 * Timeouts are set per project on purpose: node's runner had none, vitest's
 * defaults (5 s, hooks 10 s) are too short for a test that starts a shop.
 * `MESHWORK_TEST_CONCURRENCY` sets the int workers (default 3 on these two
 * cores: the int files mostly wait on sockets and databases, but the ones that
 * start many processes starve the others beyond that).
 */
import { defineConfig } from "vitest/config";

const IGNORED = ["**/node_modules/**", "**/dist/**", "**/.data/**", "**/gen/**"];
const intWorkers = Number(process.env.MESHWORK_TEST_CONCURRENCY ?? 3);

export default defineConfig({
  test: {
    pool: "forks",
    // The last line is "N passed, N failed, N skipped" (test/support/summary-reporter.ts), a format CI reads.
    reporters: ["default", "./test/support/summary-reporter.ts"],
    coverage: {
      provider: "v8",
      include: ["packages/*/src/**/*.ts", "services/*/src/**/*.ts", "scripts/**/*.ts"],
      // The compose tooling (stand-ins, compose:up/down, the lifecycle the compose test shares) runs against
      // Docker in `npm run compose:test`, a run of its own: this run never calls it, so it would only count as unmeasured.
      exclude: ["packages/contracts/**", "**/*.test.ts", "**/*.suite.ts", "packages/testing/**", "scripts/standins.ts", "scripts/compose.ts", "scripts/lib/compose.ts"],
      // The summary is printed by test/support/summary-reporter.ts, just above the closing line; the JSON is for tools.
      reporter: ["json-summary"],
      reportsDirectory: "test-artifacts/coverage",
      reportOnFailure: true,
      // A floor just under what the whole suite reached on 2026-12-06 in CI (statements 85.5 %, branches 78.7 %,
      // functions 85.4 %, lines 88.5 %; code of the test processes only: the child processes a test starts
      // are not measured). A drop below fails the run; raise it as coverage grows.
      thresholds: { statements: 84, branches: 77, functions: 83, lines: 87 },
    },
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["**/*.test.ts"],
          // *.compose.test.ts: the shop in containers, run by `npm run compose:test` (vitest.compose.config.ts).
          exclude: [...IGNORED, "**/*.int.test.ts", "**/*.serial.test.ts", "**/*.compose.test.ts"],
          // Files share their worker's module cache and embedded PGlite: loading the
          // platform and starting PGlite once per worker, not once per file, is most
          // of the time this project takes. Tests clean up after themselves, which
          // is what makes this safe.
          isolate: false,
          maxWorkers: 2,
          // First: the quickest feedback. Projects with different worker counts need groups of their own.
          sequence: { groupOrder: 0 },
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        extends: true,
        test: {
          name: "int",
          include: ["**/*.int.test.ts"],
          exclude: IGNORED,
          maxWorkers: intWorkers,
          sequence: { groupOrder: 1 },
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          name: "serial",
          include: ["**/*.serial.test.ts"],
          exclude: IGNORED,
          fileParallelism: false,
          sequence: { groupOrder: 2 },
          testTimeout: 300_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
