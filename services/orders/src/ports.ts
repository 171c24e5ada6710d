import type { HistoryStep, OrderCursor, OrderLine, OrderRecord, OrderStatus, PlacementRequest } from "./orders.js";
import type { Decision, SagaState, StepResult } from "./saga.js";

export interface NewOrder {
  readonly id: string;
  readonly userId: string;
  readonly requestId: string;
  readonly request: PlacementRequest;
  readonly fingerprint: string;
}

/** The event to write with a status change, built by the caller. */
export interface StatusEvent {
  readonly messageId: string;
  readonly routingKey: string;
  readonly body: Uint8Array;
  readonly headers: Readonly<Record<string, string | number>>;
}

export type EventFactory = (order: OrderRecord, previous: OrderStatus | undefined) => StatusEvent;

/** Who leases a newly placed saga, and for how long (see OrderStore.place). */
export interface SagaLease {
  readonly owner: string;
  readonly leaseMs: number;
}

export interface ClaimedSaga extends SagaState {
  readonly leaseOwner: string;
  /** W3C trace context of the placement (traceparent), {} when it was not traced. */
  readonly traceContext?: Readonly<Record<string, string>>;
}

/**
 * Where orders live. One SQL adapter serves PostgreSQL and PGlite (the saga
 * leasing and the outbox are SQL through and through); RPC tests use it on
 * in-memory PGlite, which needs no network.
 */
export interface OrderStore {
  /**
   * Records a new order as PENDING with its saga and its ORDER_PLACED event in
   * one transaction. When the user already used the key, returns that order
   * (created: false) — or throws IdempotencyConflictError for a different request.
   * With `lease`, the new saga is leased to its owner at once and returned, so
   * that instance runs it without claiming it first.
   */
  place(order: NewOrder, event: EventFactory, lease?: SagaLease): Promise<{ order: OrderRecord; created: boolean; saga?: ClaimedSaga }>;
  /** The order as the view (the inline projection) has it: what GetOrder, ListOrders and WatchOrder read. */
  get(id: string): Promise<OrderRecord | undefined>;
  /** The order as its event stream folds it (with its card token while the saga needs it): what the saga reads. */
  load(id: string): Promise<OrderRecord | undefined>;
  /** The user's orders, newest first, after the cursor. */
  list(userId: string, limit: number, after: OrderCursor | undefined): Promise<OrderRecord[]>;
  /**
   * Leases due sagas for `owner` until now + leaseMs: every saga whose next
   * attempt is due and whose lease is free or expired, or just `orderId`.
   */
  claim(owner: string, limit: number, leaseMs: number, orderId?: string): Promise<ClaimedSaga[]>;
  /** Frees the lease `owner` holds on the saga of `orderId` (one it took but will not run), for any instance's next poll. */
  releaseLease(orderId: string, owner: string): Promise<void>;
  /**
   * Applies a saga decision to `order` (as the saga last saw it): appends the
   * decision's events to the order's stream at `order.version`, updates the
   * view and (when the status changes) writes the outbox event, in one
   * transaction — only while `saga.leaseOwner` still holds the lease, which
   * makes it the order's only writer. Keeps the lease when the next step runs
   * at once, frees it otherwise. Returns undefined when the lease was lost; throws
   * StreamConflictError (nothing written) when the stream moved past `order.version`.
   */
  apply(saga: ClaimedSaga, order: OrderRecord, decision: Decision, leaseMs: number, event: EventFactory): Promise<{ order: OrderRecord; saga: ClaimedSaga } | undefined>;
  /** Counts of unfinished sagas, for recovery logs and tests. */
  pendingSagas(): Promise<number>;
}

/** Performs saga steps; each answers a StepResult and never throws for a remote failure. */
export interface SagaSteps {
  reserveStock(order: OrderRecord, timeoutMs: number): Promise<StepResult>;
  authorizePayment(order: OrderRecord, timeoutMs: number): Promise<StepResult>;
  compensate(order: OrderRecord, authorizeAttempted: boolean, timeoutMs: number): Promise<StepResult>;
}

/** Whether products exist, asked of the catalog before an order is accepted. */
export interface ProductCheck {
  /** Ids that the catalog does not know. Throws RpcError UNAVAILABLE when it cannot tell. */
  unknownProducts(productIds: readonly string[]): Promise<Set<string>>;
}

export type { HistoryStep, OrderLine };
