/**
 * What happens to a message whose handling failed, decided in one place so
 * both adapters retry, dead-letter and label messages identically.
 */

/** Header on a retried copy: the error of the attempt that failed, so the next attempt (and a person) can see it. */
export const LAST_ERROR_HEADER = "x-last-error";

/**
 * Error texts travel in headers. amqplib 2.3 refuses (RangeError) a header
 * table over 64 KiB, and a stack-sized message is no use to a reader anyway.
 */
const MAX_ERROR_LENGTH = 1_000;

export function describeError(error: unknown): string {
  const text = error instanceof Error ? error.message || error.name : String(error);
  return text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH)}…` : text;
}

/** The dead-letter reason of a message that could not be parsed. */
export const unparseableReason = (error: unknown): string => `unparseable: ${describeError(error)}`;

/** The dead-letter reason of a message that failed on every attempt. */
export const exhaustedReason = (attempts: number, error: unknown): string => `failed ${attempts} attempt${attempts === 1 ? "" : "s"}; last error: ${describeError(error)}`;

export type FailureStep = { readonly kind: "retry"; readonly index: number; readonly delayMs: number; readonly nextAttempt: number } | { readonly kind: "dead-letter" };

/**
 * After attempt `attempt` (1-based) failed: the retry delay to wait, or the
 * dead-letter queue once every delay has been used. With delays [1 s, 5 s,
 * 30 s] a message is tried four times.
 */
export function nextStep(attempt: number, retryDelaysMs: readonly number[]): FailureStep {
  const index = attempt - 1;
  const delayMs = retryDelaysMs[index];
  if (delayMs === undefined) return { kind: "dead-letter" };
  return { kind: "retry", index, delayMs, nextAttempt: attempt + 1 };
}

/** The attempt number a message carries (1 when the header is absent or nonsense). */
export function attemptOf(value: unknown): number {
  const attempt = typeof value === "number" ? value : typeof value === "string" ? Number(value) : Number.NaN;
  return Number.isInteger(attempt) && attempt >= 1 ? attempt : 1;
}

/** Rejects topologies the broker would refuse later and less clearly. */
export function checkTopology(topology: { readonly queue: string; readonly bindings: readonly string[]; readonly retryDelaysMs: readonly number[] }, prefetch: number): void {
  if (topology.queue.length === 0) throw new Error("queue: a name is required");
  if (topology.bindings.length === 0) throw new Error(`${topology.queue}: at least one binding is required`);
  topology.retryDelaysMs.forEach((delay, index) => {
    if (!Number.isInteger(delay) || delay < 0) throw new Error(`${topology.queue}: retryDelaysMs[${index}] must be a whole number of milliseconds, got ${delay}`);
  });
  if (!Number.isInteger(prefetch) || prefetch < 1 || prefetch > 65_535) throw new Error(`${topology.queue}: prefetch must be from 1 to 65535, got ${prefetch}`);
}
