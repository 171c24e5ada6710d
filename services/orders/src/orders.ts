/**
 * The orders domain: what an order is, what a placement request must
 * satisfy, and the identity of a request for idempotency. No gRPC, no SQL.
 */
import { createHash } from "node:crypto";
import { InvalidFieldError } from "@meshwork/platform/errors";

export type OrderStatus = "pending" | "confirmed" | "rejected" | "failed";

export const FINAL_STATUSES: ReadonlySet<OrderStatus> = new Set(["confirmed", "rejected", "failed"]);

/** The saga's timeline entries, in the words of the contract's SagaStep. */
export type HistoryStep =
  | "order_placed"
  | "stock_reserved"
  | "stock_refused"
  | "payment_authorized"
  | "payment_declined"
  | "payment_voided"
  | "stock_released"
  | "order_confirmed"
  | "order_rejected"
  | "order_failed";

export interface HistoryEntry {
  readonly step: HistoryStep;
  readonly detail: string;
  readonly occurredAt: Date;
}

export interface OrderLine {
  readonly productId: string;
  readonly quantity: number;
  /** Set once stock is reserved (the catalog's price at that moment). */
  readonly unitPriceMinor?: number;
  readonly currency?: string;
}

export interface OrderRecord {
  readonly id: string;
  readonly userId: string;
  readonly idempotencyKey: string;
  readonly fingerprint: string;
  readonly requestId: string;
  readonly status: OrderStatus;
  readonly reason: string;
  readonly lines: readonly OrderLine[];
  readonly totalMinor: number | undefined;
  readonly currency: string | undefined;
  readonly cardToken: string;
  readonly history: readonly HistoryEntry[];
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface PlacementRequest {
  readonly idempotencyKey: string;
  readonly items: readonly { readonly productId: string; readonly quantity: number }[];
  readonly cardToken: string;
}

/** The platform's field error, re-exported so domain code and tests name it from here. */
export { InvalidFieldError };

/** The same idempotency key was used before for a different request. */
export class IdempotencyConflictError extends Error {
  override readonly name = "IdempotencyConflictError";
  constructor(readonly idempotencyKey: string) {
    super(`idempotency key ${idempotencyKey} was already used for a different order`);
  }
}

export class OrderNotFoundError extends Error {
  override readonly name = "OrderNotFoundError";
  constructor(readonly orderId: string) {
    super(`order ${orderId} not found`);
  }
}

export const LIMITS = {
  minKeyLength: 8,
  maxKeyLength: 64,
  maxIdLength: 64,
  maxItems: 50,
  maxQuantity: 1000,
  maxCardTokenLength: 64,
  defaultPageSize: 20,
  maxPageSize: 100,
} as const;

const KEY_PATTERN = /^[A-Za-z0-9_-]+$/;
const PRINTABLE = /^[\x21-\x7e]+$/;

export function checkId(field: string, value: string): string {
  if (value.length === 0) throw new InvalidFieldError(field, "is required");
  if (value.length > LIMITS.maxIdLength) throw new InvalidFieldError(field, `must be at most ${LIMITS.maxIdLength} characters`);
  if (!KEY_PATTERN.test(value)) throw new InvalidFieldError(field, "may contain only letters, digits, '-' and '_'");
  return value;
}

/** Validates a placement; returns it with items ordered by product id. */
export function checkPlacement(request: PlacementRequest): PlacementRequest {
  const key = request.idempotencyKey;
  if (key.length < LIMITS.minKeyLength || key.length > LIMITS.maxKeyLength) {
    throw new InvalidFieldError("idempotency_key", `must be ${LIMITS.minKeyLength} to ${LIMITS.maxKeyLength} characters`);
  }
  if (!KEY_PATTERN.test(key)) throw new InvalidFieldError("idempotency_key", "may contain only letters, digits, '-' and '_'");
  if (request.items.length === 0) throw new InvalidFieldError("items", "must list at least one item");
  if (request.items.length > LIMITS.maxItems) throw new InvalidFieldError("items", `must list at most ${LIMITS.maxItems} items`);
  const seen = new Set<string>();
  request.items.forEach((item, index) => {
    checkId(`items[${index}].product_id`, item.productId);
    if (!Number.isInteger(item.quantity) || item.quantity < 1 || item.quantity > LIMITS.maxQuantity) {
      throw new InvalidFieldError(`items[${index}].quantity`, `must be from 1 to ${LIMITS.maxQuantity}`);
    }
    if (seen.has(item.productId)) throw new InvalidFieldError(`items[${index}].product_id`, `lists product ${item.productId} twice`);
    seen.add(item.productId);
  });
  const token = request.cardToken;
  if (token.length === 0) throw new InvalidFieldError("payment_method.card_token", "is required");
  if (token.length > LIMITS.maxCardTokenLength || !PRINTABLE.test(token)) {
    throw new InvalidFieldError("payment_method.card_token", `must be 1 to ${LIMITS.maxCardTokenLength} printable characters`);
  }
  const items = [...request.items].map(({ productId, quantity }) => ({ productId, quantity })).sort((a, b) => (a.productId < b.productId ? -1 : a.productId > b.productId ? 1 : 0));
  return { idempotencyKey: key, items, cardToken: token };
}

/**
 * What makes two placements "the same request" for idempotency: the items and
 * the card, never the card token itself in clear.
 */
export function placementFingerprint(request: PlacementRequest): string {
  const canonical = JSON.stringify([request.items.map((item) => [item.productId, item.quantity]), createHash("sha256").update(request.cardToken).digest("hex")]);
  return createHash("sha256").update(canonical).digest("hex");
}

export function checkPageSize(value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > LIMITS.maxPageSize) {
    throw new InvalidFieldError("page_size", `must be from 0 to ${LIMITS.maxPageSize} (0 means ${LIMITS.defaultPageSize})`);
  }
  return value === 0 ? LIMITS.defaultPageSize : value;
}

/** Cursor for newest-first listing: (created_at, id) of the last order seen. */
export interface OrderCursor {
  readonly createdAt: Date;
  readonly id: string;
}

export function encodeOrderCursor(cursor: OrderCursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt.toISOString(), cursor.id])).toString("base64url");
}

export function decodeOrderCursor(token: string): OrderCursor | undefined {
  if (token === "") return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    if (Array.isArray(parsed) && parsed.length === 2 && typeof parsed[0] === "string" && typeof parsed[1] === "string") {
      const createdAt = new Date(parsed[0]);
      if (!Number.isNaN(createdAt.getTime())) return { createdAt, id: parsed[1] };
    }
  } catch {
    // fall through to the error below
  }
  throw new InvalidFieldError("page_token", "is not a token this service issued");
}
