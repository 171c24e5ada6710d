import { extractTraceContext, inSpan, isDatabaseUnavailable, runWithRequestId, StreamConflictError, type Logger, type Tracer } from "@meshwork/platform";
import type { OrderRecord } from "./orders.js";
import type { ClaimedSaga, EventFactory, OrderStore, SagaSteps } from "./ports.js";
import { decide, type RetryPolicy, type StepResult } from "./saga.js";

export interface SagaRunnerOptions {
  readonly store: OrderStore;
  readonly steps: SagaSteps;
  readonly policy: RetryPolicy;
  readonly event: EventFactory;
  readonly log: Logger;
  /** Unique per process: the lease owner. */
  readonly owner: string;
  /** Deadline of each remote step. */
  readonly stepTimeoutMs: number;
  /** How long a claimed saga stays ours without progress; a crashed owner's sagas are taken over after it. */
  readonly leaseMs: number;
  /** Sagas worked on at once. */
  readonly concurrency: number;
  /** How often to look for due sagas (retries, crashed owners' leftovers). */
  readonly pollIntervalMs: number;
  /** Called after every committed change of an order. */
  readonly onChange: (order: OrderRecord) => void;
  readonly random?: () => number;
  /** A span per saga run, continuing the order's trace; none when omitted. */
  readonly tracer?: Tracer;
}

export interface SagaRunner {
  start(): void;
  /**
   * Runs a freshly placed order's saga now instead of at the next poll.
   * `placed`, the order as placement folded it, spares the first step a read
   * of the stream; `leased`, its saga as placement leased it to this runner,
   * spares the claim. Without room for it, the runner gives that lease back
   * for the next poll.
   */
  kick(orderId: string, placed?: OrderRecord, leased?: ClaimedSaga): void;
  /** Stops claiming and waits for the sagas in hand (bounded by their step deadlines). */
  stop(): Promise<void>;
  /** Sagas being worked on by this process. */
  active(): number;
}

/**
 * Drives sagas: claims due ones under a lease, performs the current step,
 * asks the state machine what follows, and commits that decision (with the
 * order's change and its event) — then goes on at once or leaves the saga for
 * its back-off. After a crash nothing is lost: every decision is committed
 * before the next step starts, steps are idempotent per order id, and a
 * crashed owner's leases expire so another process (or the restarted one)
 * resumes where it stopped.
 */
export function createSagaRunner(options: SagaRunnerOptions): SagaRunner {
  const { store, steps, log } = options;
  const random = options.random ?? Math.random;
  const inHand = new Map<string, Promise<void>>();
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let polling: Promise<void> | undefined;

  const perform = async (saga: ClaimedSaga, order: OrderRecord): Promise<StepResult> => {
    switch (saga.step) {
      case "reserve_stock":
        return steps.reserveStock(order, options.stepTimeoutMs);
      case "authorize_payment":
        return steps.authorizePayment(order, options.stepTimeoutMs);
      case "compensate":
        return steps.compensate(order, saga.authorizeAttempted, options.stepTimeoutMs);
      case "done":
        throw new Error(`saga of ${saga.orderId} is done`);
    }
  };

  const drive = async (claimed: ClaimedSaga, placed?: OrderRecord): Promise<void> => {
    // The saga reads the order as its stream folds it, never the view. A saga
    // claimed untried right after its placement has that fold in hand (one
    // event, the card token with it); had anything moved the stream since, the
    // first decision's append would meet a StreamConflictError and read it again.
    const fresh = placed !== undefined && placed.id === claimed.orderId && claimed.step === "reserve_stock" && claimed.attempts === 0;
    const order = fresh ? placed : await store.load(claimed.orderId);
    if (!order) throw new Error(`saga of missing order ${claimed.orderId}`);
    // Log lines of the saga carry the request that placed the order.
    await runWithRequestId(order.requestId, () => advance(claimed, order));
  };

  const advance = async (claimed: ClaimedSaga, first: OrderRecord): Promise<void> => {
    let saga = claimed;
    let order = first;
    while (!stopping) {
      const result = await perform(saga, order);
      const decision = decide(saga, result, options.policy, random);
      if (result.kind === "transient") {
        log.warn({ orderId: saga.orderId, step: saga.step, attempt: decision.attempts, retryInMs: decision.delayMs, reason: result.reason }, "saga step failed; will retry");
      }
      let applied: Awaited<ReturnType<OrderStore["apply"]>>;
      try {
        applied = await store.apply(saga, order, decision, options.leaseMs, options.event);
      } catch (error) {
        if (!(error instanceof StreamConflictError)) throw error;
        // The stream moved on under us (nothing of ours was written): read it
        // again and redo the step, which is idempotent per order id.
        log.warn({ orderId: saga.orderId, expectedVersion: error.expectedVersion }, "order stream changed under the saga; re-reading it");
        const fresh = await store.load(saga.orderId);
        if (!fresh) throw new Error(`saga of missing order ${saga.orderId}`);
        order = fresh;
        continue;
      }
      if (!applied) {
        log.warn({ orderId: saga.orderId }, "saga lease lost; another instance carries on");
        return;
      }
      options.onChange(applied.order);
      if (decision.status) log.info({ orderId: saga.orderId, status: decision.status, reason: decision.reason }, "order final");
      if (decision.step === "done" || decision.delayMs > 0) return;
      saga = applied.saga;
      order = applied.order;
    }
  };

  const run = (saga: ClaimedSaga, placed?: OrderRecord): void => {
    if (inHand.has(saga.orderId)) return;
    const traced = options.tracer
      ? inSpan(options.tracer, `saga ${saga.step}`, { parent: extractTraceContext(saga.traceContext), attributes: { "meshwork.saga.step": saga.step, "meshwork.saga.attempts": saga.attempts } }, () =>
          drive(saga, placed),
        )
      : drive(saga, placed);
    const work = traced
      .catch((error: unknown) => {
        // The database going away is an outage, not a bug: the saga resumes all the same.
        if (isDatabaseUnavailable(error)) log.warn({ err: error, orderId: saga.orderId }, "saga paused: database unavailable; it resumes when its lease expires");
        else log.error({ err: error, orderId: saga.orderId }, "saga run failed; it resumes when its lease expires");
      })
      .finally(() => {
        inHand.delete(saga.orderId);
      });
    inHand.set(saga.orderId, work);
  };

  const poll = async (): Promise<void> => {
    const free = options.concurrency - inHand.size;
    if (free <= 0) return;
    const claimed = await store.claim(options.owner, free, options.leaseMs);
    for (const saga of claimed) run(saga);
    // A full claim means more may be due: look again at once rather than after the interval.
    if (claimed.length === free && !stopping) schedule(0);
  };

  const schedule = (delayMs: number): void => {
    if (stopping) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      polling = poll()
        .catch((error: unknown) => log.warn({ err: error instanceof Error ? error.message : String(error) }, "saga poll failed"))
        .finally(() => schedule(options.pollIntervalMs));
    }, delayMs);
  };

  return {
    start() {
      schedule(0);
    },
    kick(orderId, placed, leased) {
      if (leased) {
        if (!stopping && inHand.size < options.concurrency) run(leased, placed);
        else
          store
            .releaseLease(orderId, leased.leaseOwner)
            .catch((error: unknown) => log.warn({ err: error instanceof Error ? error.message : String(error), orderId }, "could not give a saga's lease back; it expires"));
        return;
      }
      if (stopping || inHand.size >= options.concurrency) return;
      store
        .claim(options.owner, 1, options.leaseMs, orderId)
        .then((claimed) => {
          for (const saga of claimed) run(saga, placed);
        })
        .catch((error: unknown) => log.warn({ err: error instanceof Error ? error.message : String(error), orderId }, "saga kick failed; the poll will pick it up"));
    },
    async stop() {
      stopping = true;
      clearTimeout(timer);
      await polling;
      await Promise.all(inHand.values());
    },
    active: () => inHand.size,
  };
}
