/**
 * The AuthorizePayment use case, apart from its RPC handler: claim the order
 * id in the store, ask the processor with no transaction open, record the
 * outcome only if the claim still holds (a void may have won). It speaks in
 * domain terms (AuthorizationRequest in, PaymentRecord out, domain errors
 * thrown); service.ts maps them to and from the wire.
 */
import { setTimeout as delay } from "node:timers/promises";
import { untilAborted, type CallContext, type Logger } from "@meshwork/platform";
import {
  AuthorizationInProgressError,
  existingPaymentOutcome,
  ProcessorUnavailableError,
  requestFingerprint,
  type AuthorizationOutcome,
  type AuthorizationRequest,
  type PaymentRecord,
} from "./payments.js";
import type { PaymentProcessor, PaymentStore, ProcessorDecision } from "./ports.js";

export interface AuthorizeDeps {
  readonly store: PaymentStore;
  readonly processor: PaymentProcessor;
  /** Longest wait for the processor; see PAYMENTS_PROCESSOR_TIMEOUT_MS. */
  readonly processorTimeoutMs: number;
  /** How long a claim keeps other callers out; see PAYMENTS_PENDING_LEASE_MS. */
  readonly pendingLeaseMs: number;
}

/** What the use case needs of its caller: a logger, its cancellation and what is left of its deadline. */
export type AuthorizeCaller = Pick<CallContext, "log" | "signal" | "timeoutMs">;

export interface Authorizer {
  /**
   * The payment of `request.orderId` once it has a final status (authorized,
   * declined or voided). Throws IdempotencyConflictError when the order has a
   * payment for a different request, ProcessorUnavailableError when the
   * processor failed or timed out, AuthorizationInProgressError when another
   * instance holds the claim past the caller's deadline, and the abort reason
   * when the caller's signal aborts.
   */
  authorize(request: AuthorizationRequest, caller: AuthorizeCaller): Promise<PaymentRecord>;
  /** Resolves once every authorization now asking the processor has recorded its outcome (for shutdown). */
  settle(): Promise<void>;
}

type Attempt = { readonly kind: "done"; readonly payment: PaymentRecord } | { readonly kind: "busy" };

// Pauses while another instance holds an order's claim: short at first (the
// processor usually answers in milliseconds), never hammering the database.
const FIRST_PAUSE_MS = 10;
const MAX_PAUSE_MS = 250;

/**
 * Two deliberate choices:
 * - Identical authorizations in this process share one attempt (single
 *   flight); across instances the store's claim decides, and the others wait
 *   for the outcome (or for the claim's lease to pass, when its holder died).
 * - Once the processor is asked, the attempt runs to its outcome under the
 *   processor timeout even if the caller's deadline passes first: the caller
 *   stops waiting, but the answer is recorded, so its retry finds it instead
 *   of starting over (which, with a slow processor, might never finish).
 */
export function createAuthorizer({ store, processor, processorTimeoutMs, pendingLeaseMs }: AuthorizeDeps): Authorizer {
  const flights = new Map<string, Promise<Attempt>>();

  async function askProcessor(request: AuthorizationRequest, claimId: string, log: Logger): Promise<PaymentRecord> {
    const { orderId } = request;
    const started = Date.now();
    // Not AbortSignal.timeout(): its timer is unref'd and never cleared; this
    // one keeps the process up until the processor is done, then goes away.
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), processorTimeoutMs);
    let decision: ProcessorDecision;
    try {
      decision = await processor.authorize({ idempotencyKey: orderId, amountMinor: request.amountMinor, currency: request.currency, cardToken: request.cardToken }, timeout.signal);
    } catch (error) {
      // Read before any await: the timer may fire while the claim is released.
      const timedOut = timeout.signal.aborted;
      // Nothing final happened: end the lease so a retry may ask again at once.
      await store.release(orderId, claimId).catch((releaseError: unknown) => {
        log.error({ orderId, err: releaseError }, "could not release the claim; it expires with its lease");
      });
      const durationMs = Date.now() - started;
      if (timedOut) {
        log.warn({ orderId, durationMs, processorTimeoutMs }, "processor timed out");
        throw new ProcessorUnavailableError(`no answer within ${processorTimeoutMs} ms`);
      }
      if (error instanceof ProcessorUnavailableError) log.warn({ orderId, durationMs }, "processor unavailable");
      throw error;
    } finally {
      clearTimeout(timer);
    }
    log.info({ orderId, approved: decision.approved, durationMs: Date.now() - started }, "processor answered");
    const outcome: AuthorizationOutcome = decision.approved ? { status: "authorized" } : { status: "declined", reason: decision.reason };
    const payment = await store.finish(orderId, claimId, outcome);
    if (payment.status !== outcome.status) {
      // A void won the race. The simulated processor holds nothing; a real one
      // would be told to void this authorization here.
      log.warn({ orderId, status: payment.status, answer: outcome.status }, "order voided while the processor was asked; its answer is not recorded");
    }
    return payment;
  }

  async function attempt(request: AuthorizationRequest, fingerprint: string, log: Logger): Promise<Attempt> {
    const claim = await store.claim({
      orderId: request.orderId,
      amountMinor: request.amountMinor,
      currency: request.currency,
      fingerprint,
      leaseMs: pendingLeaseMs,
    });
    if (!claim.claimed) {
      return existingPaymentOutcome(claim.payment, fingerprint) === "final" ? { kind: "done", payment: claim.payment } : { kind: "busy" };
    }
    return { kind: "done", payment: await askProcessor(request, claim.claimId, log) };
  }

  function sharedAttempt(request: AuthorizationRequest, fingerprint: string, log: Logger): Promise<Attempt> {
    const key = `${request.orderId}\n${fingerprint}`;
    let running = flights.get(key);
    if (running === undefined) {
      running = attempt(request, fingerprint, log).finally(() => flights.delete(key));
      // Every caller may have stopped waiting: the failure must not go unhandled.
      running.catch(() => undefined);
      flights.set(key, running);
    }
    return running;
  }

  return {
    async authorize(request, caller) {
      const fingerprint = requestFingerprint(request);
      for (let pauseMs = FIRST_PAUSE_MS; ; pauseMs = Math.min(pauseMs * 2, MAX_PAUSE_MS)) {
        const result = await untilAborted(sharedAttempt(request, fingerprint, caller.log), caller.signal);
        if (result.kind === "done") return result.payment;
        // Another instance holds the claim: look again after a pause, until
        // it records an outcome or its lease passes and claim() takes over.
        const left = caller.timeoutMs();
        if (left !== undefined && left <= pauseMs) throw new AuthorizationInProgressError(request.orderId);
        await delay(pauseMs, undefined, { signal: caller.signal });
      }
    },
    async settle() {
      await Promise.allSettled([...flights.values()]);
    },
  };
}
