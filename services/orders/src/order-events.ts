/**
 * The order as an event stream: what happened to an order, one event per
 * fact, appended to the stream `order-<id>` (the events table of the orders
 * database, @meshwork/platform/events). The order's state is the fold of its
 * events (`foldOrder`); the `orders` and `order_history` tables are a view
 * of that fold kept in the same transaction (order-view.ts), and the sales
 * view is another, kept asynchronously (sales-view.ts).
 *
 * Schema versions. Schema 2 is what the service appends. Schema 1 is what
 * migration 0006 wrote for orders placed before the streams existed: it could
 * only read the old `order_history` table, whose rows have a free-text
 * `detail` and no prices, so its events carry `{ detail }` (and the order's
 * priced lines on StockReserved, read from the old row). The upcasters below
 * read them as schema 2; the stored rows are never rewritten.
 *
 * Two things are deliberately not in any event: the card token (a secret that
 * must be erasable, and an event is for ever: it stays sealed on the order's
 * row until the payment step no longer needs it), and the saga's own
 * bookkeeping (attempts, leases, back-off: the `sagas` table), which is how
 * the process manager works, not what happened to the order.
 */
import type { RecordedEvent, Upcaster } from "@meshwork/platform";
import type { HistoryStep, OrderLine, OrderRecord, OrderStatus, Shipping } from "./orders.js";

export const ORDER_SCHEMA_VERSION = 2;
export const orderStreamId = (orderId: string): string => `order-${orderId}`;
export const orderIdOfStream = (streamId: string): string => streamId.slice("order-".length);

export interface OrderPlacedData {
  readonly userId: string;
  readonly idempotencyKey: string;
  readonly fingerprint: string;
  readonly requestId: string;
  readonly items: readonly { readonly productId: string; readonly quantity: number }[];
  /** Null for an order placed through API v1. */
  readonly shipping: Shipping | null;
}

/** Every event of an order, with its data as schema 2 has it. */
export type OrderEvent =
  | { readonly type: "OrderPlaced"; readonly data: OrderPlacedData }
  | { readonly type: "StockReserved"; readonly data: { readonly lines: readonly Required<OrderLine>[] } }
  | { readonly type: "StockRefused"; readonly data: { readonly reason: string } }
  | { readonly type: "PaymentAuthorized"; readonly data: Record<string, never> }
  | { readonly type: "PaymentDeclined"; readonly data: { readonly reason: string } }
  | { readonly type: "PaymentVoided"; readonly data: Record<string, never> }
  | { readonly type: "StockReleased"; readonly data: Record<string, never> }
  | { readonly type: "OrderConfirmed"; readonly data: Record<string, never> }
  | { readonly type: "OrderRejected"; readonly data: { readonly reason: string } }
  | { readonly type: "OrderFailed"; readonly data: { readonly reason: string } };

export type OrderEventType = OrderEvent["type"];

/** Each event type and the timeline step (the contract's SagaStep) it shows as. */
export const EVENT_STEP: Readonly<Record<OrderEventType, HistoryStep>> = {
  OrderPlaced: "order_placed",
  StockReserved: "stock_reserved",
  StockRefused: "stock_refused",
  PaymentAuthorized: "payment_authorized",
  PaymentDeclined: "payment_declined",
  PaymentVoided: "payment_voided",
  StockReleased: "stock_released",
  OrderConfirmed: "order_confirmed",
  OrderRejected: "order_rejected",
  OrderFailed: "order_failed",
};

export const STEP_EVENT: Readonly<Record<HistoryStep, OrderEventType>> = Object.fromEntries(Object.entries(EVENT_STEP).map(([type, step]) => [step, type])) as Record<HistoryStep, OrderEventType>;

/** The types whose data is `{ reason }`; the timeline shows the reason as the step's detail. */
const WITH_REASON: ReadonlySet<OrderEventType> = new Set(["StockRefused", "PaymentDeclined", "OrderRejected", "OrderFailed"]);

const isEventType = (type: string): type is OrderEventType => Object.hasOwn(EVENT_STEP, type);

/** The new event for a timeline step the saga decided, as schema 2 has it. */
export function eventForStep(step: HistoryStep, detail: string, lines: readonly Required<OrderLine>[] | undefined): OrderEvent {
  const type = STEP_EVENT[step];
  if (type === "OrderPlaced") throw new Error("an order is placed by place(), never by a saga decision");
  if (type === "StockReserved") {
    if (!lines) throw new Error("stock_reserved without the reserved lines");
    return { type, data: { lines } };
  }
  if (WITH_REASON.has(type)) return { type, data: { reason: detail } } as OrderEvent;
  return { type, data: {} } as OrderEvent;
}

/**
 * Schema 1 (migration 0006) to schema 2: `{ detail }` becomes `{ reason }`
 * where the type has one and nothing otherwise; StockReserved keeps its
 * lines; OrderPlaced's `lines` (the old row's, priced once stock was
 * reserved) become the placed `items`.
 */
export const orderUpcasters: readonly Upcaster[] = Object.keys(EVENT_STEP).map((type) => ({
  type,
  fromSchemaVersion: 1,
  toSchemaVersion: 2,
  upcast(data: unknown): unknown {
    const old = data as { detail?: string; lines?: Required<OrderLine>[] } & Record<string, unknown>;
    switch (type as OrderEventType) {
      case "OrderPlaced": {
        const { lines, detail: _detail, ...rest } = old;
        return { ...rest, items: (lines ?? []).map((line) => ({ productId: line.productId, quantity: line.quantity })) };
      }
      case "StockReserved":
        return { lines: old.lines ?? [] };
      default:
        return WITH_REASON.has(type as OrderEventType) ? { reason: old.detail ?? "" } : {};
    }
  },
}));

/** Status and reason after a final event. */
const FINAL: Partial<Record<OrderEventType, OrderStatus>> = { OrderConfirmed: "confirmed", OrderRejected: "rejected", OrderFailed: "failed" };

/** The event's fields the fold reads: an appended (RecordedEvent) or a stored one. */
export type FoldableEvent = Pick<RecordedEvent, "type" | "data" | "version" | "recordedAt">;

/**
 * One step of the fold: the order after `event`. The first event must be
 * OrderPlaced (`order` undefined), every other one follows it. Throws on an
 * unknown type or a version out of turn: a corrupt stream is a bug to see,
 * not an order to guess.
 */
export function evolveOrder(orderId: string, order: OrderRecord | undefined, event: FoldableEvent): OrderRecord {
  if (!isEventType(event.type)) throw new Error(`order ${orderId}: unknown event type ${event.type} at version ${event.version}`);
  const expected = (order?.version ?? 0) + 1;
  if (event.version !== expected) throw new Error(`order ${orderId}: event ${event.type} has version ${event.version}, expected ${expected}`);
  if (order === undefined) {
    if (event.type !== "OrderPlaced") throw new Error(`stream of order ${orderId} starts with ${event.type}, not OrderPlaced`);
    const placed = event.data as OrderPlacedData;
    return {
      id: orderId,
      userId: placed.userId,
      idempotencyKey: placed.idempotencyKey,
      fingerprint: placed.fingerprint,
      requestId: placed.requestId,
      status: "pending",
      reason: "",
      lines: placed.items.map((item) => ({ productId: item.productId, quantity: item.quantity })),
      totalMinor: undefined,
      currency: undefined,
      cardToken: "",
      shipping: placed.shipping ?? undefined,
      history: [{ step: "order_placed", detail: "", occurredAt: event.recordedAt }],
      version: event.version,
      createdAt: event.recordedAt,
      updatedAt: event.recordedAt,
    };
  }
  if (event.type === "OrderPlaced") throw new Error(`order ${orderId} is placed twice (version ${event.version})`);
  const data = event.data as { reason?: string; lines?: Required<OrderLine>[] };
  let next: OrderRecord = {
    ...order,
    version: event.version,
    updatedAt: event.recordedAt,
    history: [...order.history, { step: EVENT_STEP[event.type], detail: WITH_REASON.has(event.type) ? (data.reason ?? "") : "", occurredAt: event.recordedAt }],
  };
  if (event.type === "StockReserved") {
    const lines = data.lines ?? [];
    next = { ...next, lines, totalMinor: lines.reduce((sum, line) => sum + line.unitPriceMinor * line.quantity, 0), currency: lines[0]?.currency };
  }
  const final = FINAL[event.type];
  if (final) {
    if (order.status !== "pending") throw new Error(`order ${orderId} is already ${order.status}; ${event.type} cannot follow`);
    next = { ...next, status: final, reason: data.reason ?? "" };
  }
  return next;
}

/** The fold: an order's state from its whole stream (version order, upcast); undefined for no events. */
export function foldOrder(orderId: string, events: readonly FoldableEvent[]): OrderRecord | undefined {
  return events.reduce<OrderRecord | undefined>((order, event) => evolveOrder(orderId, order, event), undefined);
}
