import { InvalidFieldError } from "@meshwork/platform/errors";

/** Runs a validation expected to refuse, and returns the field and problem it named. */
export function fieldRefusal(work: () => unknown): { field: string; problem: string } {
  try {
    work();
  } catch (error) {
    if (error instanceof InvalidFieldError) return { field: error.field, problem: error.problem };
    throw error;
  }
  throw new Error("expected an InvalidFieldError");
}
