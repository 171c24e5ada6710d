/**
 * Prints the closing line CI reads, "N passed, N failed, N skipped", as the
 * last line of the run, after vitest's own report (and, under --coverage, a
 * coverage summary just above it). A file that fails to load, a failing
 * beforeAll or afterAll, and an unhandled error each count as a failure, so
 * a broken file can never look like a green run; a run that passed nothing
 * fails.
 */
import type { Reporter, SerializedError, TestModule } from "vitest/node";

interface CoverageSummary {
  getCoverageSummary(): Record<"statements" | "branches" | "functions" | "lines", { pct: number; covered: number; total: number }>;
}

export default class SummaryReporter implements Reporter {
  private coverage: string | undefined;

  onCoverage(coverage: unknown): void {
    const summary = (coverage as CoverageSummary).getCoverageSummary();
    const kinds = ["statements", "branches", "functions", "lines"] as const;
    this.coverage = `coverage: ${kinds.map((kind) => `${kind} ${summary[kind].pct.toFixed(2)}% (${summary[kind].covered}/${summary[kind].total})`).join(", ")}`;
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): void {
    let passed = 0;
    let failed = unhandledErrors.length;
    let skipped = 0;
    for (const module of modules) {
      failed += module.errors().length;
      for (const suite of module.children.allSuites()) failed += suite.errors().length;
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") passed++;
        else if (state === "failed") failed++;
        else skipped++;
      }
    }
    if (this.coverage) process.stdout.write(`\n${this.coverage}\n`);
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
    if (passed === 0) process.exitCode = 1;
  }
}
