/**
 * What a test helper needs of the test it serves: a place to register its
 * clean-up and a way to skip. vitest's TestContext is one (so a test passes
 * its own `t`); `createSuiteScope()` makes one for set-up that a describe
 * block's tests share.
 *
 * Clean-up runs last in, first out, as vitest runs onTestFinished hooks: a
 * helper that starts something on top of what an earlier one started is
 * stopped before it.
 */
import { afterAll } from "vitest";

export interface TestScope {
  onTestFinished(step: () => void | Promise<void>): void;
  skip(note?: string): void;
  readonly task: { readonly name: string };
}

/**
 * A scope for a describe block's shared set-up (call it in the block's body,
 * use it in beforeAll): what is registered on it runs after the block's last
 * test, last in first out, every step even when one fails. Skipping is not
 * possible there: a missing piece of infrastructure fails the block.
 */
export function createSuiteScope(name: string): TestScope {
  const steps: (() => void | Promise<void>)[] = [];
  afterAll(async () => {
    const failures: unknown[] = [];
    for (const step of steps.splice(0).reverse()) {
      try {
        await step();
      } catch (error) {
        failures.push(error);
      }
    }
    if (failures.length > 0) throw new AggregateError(failures, `clean-up of "${name}" failed`);
  });
  return {
    task: { name },
    onTestFinished: (step) => void steps.push(step),
    skip: (note) => {
      throw new Error(`the shared set-up of "${name}" cannot be skipped: ${note ?? "no reason given"}`);
    },
  };
}
