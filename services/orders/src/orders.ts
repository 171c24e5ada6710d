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
  /** Where and how it ships; undefined for an order placed through v1, which had no address. */
  readonly shipping: Shipping | undefined;
  readonly history: readonly HistoryEntry[];
  /** The version of the order's event stream this state is the fold of: the expected version of the next append. */
  readonly version: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export type DeliveryOption = "standard" | "express";

export interface ShippingAddress {
  readonly recipientName: string;
  readonly line1: string;
  readonly line2: string;
  readonly city: string;
  readonly postalCode: string;
  readonly countryCode: string;
}

/** Where and how an order ships (API v2). */
export interface Shipping {
  readonly address: ShippingAddress;
  readonly delivery: DeliveryOption;
}

export interface PlacementRequest {
  readonly idempotencyKey: string;
  readonly items: readonly { readonly productId: string; readonly quantity: number }[];
  readonly cardToken: string;
  /** Required by v2 (checkShipping); v1 placements have none and keep v1's behaviour. */
  readonly shipping?: Shipping;
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
  maxNameLength: 100,
  maxAddressLineLength: 200,
  maxCityLength: 100,
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
  return { idempotencyKey: key, items, cardToken: token, ...(request.shipping ? { shipping: request.shipping } : {}) };
}

const POSTAL_CODE = /^[A-Za-z0-9 -]{1,20}$/;
const COUNTRY_CODE = /^[A-Z]{2}$/;
// Letters of any script, marks, digits, punctuation and spaces: no control characters.
const TEXT = /^[^\p{Cc}\p{Cf}]*$/u;

function checkText(field: string, value: string, min: number, max: number): string {
  const trimmed = value.trim();
  if (trimmed.length < min) throw new InvalidFieldError(field, "is required");
  if (trimmed.length > max) throw new InvalidFieldError(field, `must be at most ${max} characters`);
  if (!TEXT.test(trimmed)) throw new InvalidFieldError(field, "must not contain control characters");
  return trimmed;
}

/**
 * Validates where and how a v2 order ships, naming the contract's field on
 * refusal. `address` and `delivery` are undefined when the request left them
 * out: a v2 order cannot be placed without them.
 */
export function checkShipping(address: ShippingAddress | undefined, delivery: DeliveryOption | undefined): Shipping {
  if (!address) throw new InvalidFieldError("shipping_address", "is required");
  const checked: ShippingAddress = {
    recipientName: checkText("shipping_address.recipient_name", address.recipientName, 1, LIMITS.maxNameLength),
    line1: checkText("shipping_address.line1", address.line1, 1, LIMITS.maxAddressLineLength),
    line2: checkText("shipping_address.line2", address.line2, 0, LIMITS.maxAddressLineLength),
    city: checkText("shipping_address.city", address.city, 1, LIMITS.maxCityLength),
    postalCode: address.postalCode.trim(),
    countryCode: address.countryCode,
  };
  if (!POSTAL_CODE.test(checked.postalCode)) throw new InvalidFieldError("shipping_address.postal_code", "must be 1 to 20 letters, digits, spaces or '-'");
  if (!COUNTRY_CODE.test(checked.countryCode)) throw new InvalidFieldError("shipping_address.country_code", "must be an ISO 3166-1 alpha-2 code in upper case, e.g. DE");
  if (!delivery) throw new InvalidFieldError("delivery_option", "is required: STANDARD or EXPRESS");
  return { address: checked, delivery };
}

/**
 * What makes two placements "the same request" for idempotency: the items and
 * the card (never the card token itself in clear) and, for v2, where and how it ships.
 */
export function placementFingerprint(request: PlacementRequest): string {
  const parts: unknown[] = [request.items.map((item) => [item.productId, item.quantity]), createHash("sha256").update(request.cardToken).digest("hex")];
  // Only when there is one: a v1 placement keeps the fingerprint it always had,
  // so a v1 client retrying a key it used before the upgrade gets its order back.
  if (request.shipping) parts.push(request.shipping);
  const canonical = JSON.stringify(parts);
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
