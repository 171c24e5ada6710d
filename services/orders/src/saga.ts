/**
 * The order saga as a pure state machine: given where a saga stands and what
 * its last step returned, decide the next step, the order's new status and
 * the timeline entries. No I/O here: the runner (saga-runner.ts) performs the
 * steps and persists each decision atomically with its outbox event.
 *
 *   reserve_stock ──reserved──▶ authorize_payment ──authorized──▶ done (CONFIRMED)
 *        │ refused                    │ declined / refused
 *        ▼                            ▼
 *   compensate (REJECTED)        compensate (REJECTED or FAILED)
 *        ▲ transient failures past the attempt bound: compensate (FAILED)
 *   compensate: void payment (if authorization was attempted), release stock;
 *   retried until both succeed, then done with the decided final status.
 */
import type { HistoryStep, OrderLine, OrderStatus } from "./orders.js";

export type SagaStep = "reserve_stock" | "authorize_payment" | "compensate" | "done";

export interface SagaState {
  readonly orderId: string;
  readonly step: SagaStep;
  /** Failed attempts of the current step. */
  readonly attempts: number;
  readonly authorizeAttempted: boolean;
  /** The final status compensation leads to, decided when it began. */
  readonly outcome: { readonly status: "rejected" | "failed"; readonly reason: string } | undefined;
}

/** What performing the current step returned. */
export type StepResult =
  | { readonly kind: "reserved"; readonly lines: readonly Required<OrderLine>[] }
  | { readonly kind: "stock_refused"; readonly reason: string }
  | { readonly kind: "authorized" }
  | { readonly kind: "declined"; readonly reason: string }
  | { readonly kind: "payment_refused"; readonly reason: string }
  | { readonly kind: "compensated"; readonly stockReleased: boolean; readonly paymentVoided: boolean }
  | { readonly kind: "transient"; readonly reason: string };

export interface RetryPolicy {
  /** Attempts of a forward step before the saga gives up and compensates. */
  readonly maxAttempts: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
}

export interface Decision {
  readonly step: SagaStep;
  readonly attempts: number;
  /** Delay before the step may run again (0: at once). */
  readonly delayMs: number;
  readonly authorizeAttempted: boolean;
  readonly outcome: SagaState["outcome"];
  /** Set when the order's status changes. */
  readonly status?: OrderStatus;
  readonly reason?: string;
  /** Priced lines, once reserved. */
  readonly lines?: readonly Required<OrderLine>[];
  readonly history: readonly { readonly step: HistoryStep; readonly detail: string }[];
}

/** Exponential back-off with full jitter: uniform in [0, min(max, base * 2^attempt)). */
export function backoffMs(policy: RetryPolicy, attempt: number, random: () => number): number {
  const ceiling = Math.min(policy.backoffMaxMs, policy.backoffBaseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

const compensate = (state: SagaState, outcome: NonNullable<SagaState["outcome"]>, history: Decision["history"], authorizeAttempted = state.authorizeAttempted): Decision => ({
  step: "compensate",
  attempts: 0,
  delayMs: 0,
  authorizeAttempted,
  outcome,
  history,
});

export function decide(state: SagaState, result: StepResult, policy: RetryPolicy, random: () => number): Decision {
  const same = { authorizeAttempted: state.authorizeAttempted, outcome: state.outcome };

  if (result.kind === "transient") {
    const attempts = state.attempts + 1;
    if (state.step !== "compensate" && attempts >= policy.maxAttempts) {
      const service = state.step === "reserve_stock" ? "the catalog" : "the payment service";
      return compensate(state, { status: "failed", reason: `${service} stayed unavailable; nothing was charged` }, [], state.authorizeAttempted || state.step === "authorize_payment");
    }
    // Compensation never gives up: stock and money must come back. Its delay stays capped.
    return {
      ...same,
      step: state.step,
      attempts,
      delayMs: backoffMs(policy, attempts, random),
      authorizeAttempted: state.authorizeAttempted || state.step === "authorize_payment",
      history: [],
    };
  }

  switch (state.step) {
    case "reserve_stock":
      if (result.kind === "reserved") {
        return {
          ...same,
          step: "authorize_payment",
          attempts: 0,
          delayMs: 0,
          lines: result.lines,
          history: [{ step: "stock_reserved", detail: "" }],
        };
      }
      if (result.kind === "stock_refused") {
        return compensate(state, { status: "rejected", reason: result.reason }, [{ step: "stock_refused", detail: result.reason }]);
      }
      break;
    case "authorize_payment":
      if (result.kind === "authorized") {
        return {
          ...same,
          authorizeAttempted: true,
          step: "done",
          attempts: 0,
          delayMs: 0,
          status: "confirmed",
          reason: "",
          history: [
            { step: "payment_authorized", detail: "" },
            { step: "order_confirmed", detail: "" },
          ],
        };
      }
      if (result.kind === "declined") {
        return compensate(state, { status: "rejected", reason: result.reason }, [{ step: "payment_declined", detail: result.reason }], true);
      }
      if (result.kind === "payment_refused") {
        return compensate(state, { status: "failed", reason: result.reason }, [], true);
      }
      break;
    case "compensate":
      if (result.kind === "compensated") {
        const outcome = state.outcome ?? { status: "failed" as const, reason: "compensated without a recorded outcome" };
        return {
          ...same,
          step: "done",
          attempts: 0,
          delayMs: 0,
          status: outcome.status,
          reason: outcome.reason,
          history: [
            ...(result.paymentVoided ? [{ step: "payment_voided" as const, detail: "" }] : []),
            ...(result.stockReleased ? [{ step: "stock_released" as const, detail: "" }] : []),
            { step: outcome.status === "rejected" ? ("order_rejected" as const) : ("order_failed" as const), detail: outcome.reason },
          ],
        };
      }
      break;
    case "done":
      break;
  }
  throw new Error(`saga of order ${state.orderId}: result ${result.kind} cannot follow step ${state.step}`);
}
