/**
 * Test helpers for tests that need real infrastructure. On a laptop without
 * PostgreSQL (or Python's grpcio, ...) such a test is skipped with a printed
 * notice; CI sets MESHWORK_REQUIRE_INFRA=1, which turns every such skip into a
 * failure, so CI can never pass by skipping.
 */
import type { TestScope } from "./scope.js";

export const requireInfra = (): boolean => process.env.MESHWORK_REQUIRE_INFRA === "1";

/**
 * Skips the test (or fails it, in CI) when `missing` is a reason string.
 * Returns true when the test may go on.
 */
export function needs(t: TestScope, what: string, missing: string | undefined): boolean {
  if (missing === undefined) return true;
  const message = `${what} is not available (${missing})`;
  if (requireInfra()) {
    throw new Error(`${message}, and MESHWORK_REQUIRE_INFRA=1 forbids skipping`);
  }
  process.stderr.write(`notice: skipping "${t.task.name}": ${message}\n`);
  t.skip(message);
  return false;
}
