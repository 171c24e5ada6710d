/**
 * The catalog's domain: products, stock and reservations, as plain data, with
 * the rules that requests must satisfy. No gRPC and no SQL in this file.
 */
import { InvalidFieldError } from "@meshwork/platform/errors";

export interface ProductRecord {
  readonly id: string;
  readonly name: string;
  readonly description: string;
  readonly priceMinor: number;
  readonly currency: string;
  readonly stock: number;
  readonly categories: readonly string[];
  readonly imageUrl: string;
  readonly updatedAt: Date;
}

export interface StockLine {
  readonly productId: string;
  readonly quantity: number;
}

export interface ReservedLine extends StockLine {
  readonly unitPriceMinor: number;
  readonly currency: string;
}

export type ReservationState = "reserved" | "released";

export interface ReservationRecord {
  readonly orderId: string;
  readonly state: ReservationState;
  /** Ordered by product id; empty for a release recorded before any reservation. */
  readonly lines: readonly ReservedLine[];
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface ProductQuery {
  /** Only products whose id sorts after this one. */
  readonly afterId?: string | undefined;
  readonly limit: number;
  /** Case-insensitive text in name or description. */
  readonly text?: string | undefined;
  readonly category?: string | undefined;
}

/** Why a reservation was refused. Business outcomes, not faults. */
export class ProductNotFoundError extends Error {
  override readonly name = "ProductNotFoundError";
  constructor(readonly productId: string) {
    super(`product ${productId} does not exist`);
  }
}

export class InsufficientStockError extends Error {
  override readonly name = "InsufficientStockError";
  constructor(
    readonly productId: string,
    readonly requested: number,
    readonly available: number,
  ) {
    super(`product ${productId}: ${requested} requested, ${available} available`);
  }
}

export class ReservationReleasedError extends Error {
  override readonly name = "ReservationReleasedError";
  constructor(readonly orderId: string) {
    super(`the reservation of order ${orderId} was already released`);
  }
}

export class ReservationMismatchError extends Error {
  override readonly name = "ReservationMismatchError";
  constructor(readonly orderId: string) {
    super(`order ${orderId} already has a reservation for other items`);
  }
}

/** The platform's field error, re-exported so domain code and tests name it from here. */
export { InvalidFieldError };

export const LIMITS = {
  defaultPageSize: 20,
  maxPageSize: 100,
  maxQueryLength: 100,
  maxCategoryLength: 50,
  maxIdLength: 64,
  maxItems: 50,
  maxQuantity: 1000,
} as const;

const ID_PATTERN = /^[A-Za-z0-9_-]+$/;

export function checkId(field: string, value: string): string {
  if (value.length === 0) throw new InvalidFieldError(field, "is required");
  if (value.length > LIMITS.maxIdLength) throw new InvalidFieldError(field, `must be at most ${LIMITS.maxIdLength} characters`);
  if (!ID_PATTERN.test(value)) throw new InvalidFieldError(field, "may contain only letters, digits, '-' and '_'");
  return value;
}

export function checkPageSize(value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > LIMITS.maxPageSize) {
    throw new InvalidFieldError("page_size", `must be from 0 to ${LIMITS.maxPageSize} (0 means ${LIMITS.defaultPageSize})`);
  }
  return value === 0 ? LIMITS.defaultPageSize : value;
}

export function checkText(field: string, value: string, max: number): string | undefined {
  if (value.length > max) throw new InvalidFieldError(field, `must be at most ${max} characters`);
  const trimmed = value.trim();
  return trimmed === "" ? undefined : trimmed;
}

/** Validates the lines of a reservation and returns them ordered by product id. */
export function checkStockLines(items: readonly StockLine[]): StockLine[] {
  if (items.length === 0) throw new InvalidFieldError("items", "must list at least one item");
  if (items.length > LIMITS.maxItems) throw new InvalidFieldError("items", `must list at most ${LIMITS.maxItems} items`);
  const seen = new Set<string>();
  items.forEach((item, index) => {
    checkId(`items[${index}].product_id`, item.productId);
    if (!Number.isInteger(item.quantity) || item.quantity < 1 || item.quantity > LIMITS.maxQuantity) {
      throw new InvalidFieldError(`items[${index}].quantity`, `must be from 1 to ${LIMITS.maxQuantity}`);
    }
    if (seen.has(item.productId)) throw new InvalidFieldError(`items[${index}].product_id`, `lists product ${item.productId} twice`);
    seen.add(item.productId);
  });
  return [...items].map(({ productId, quantity }) => ({ productId, quantity })).sort((a, b) => compareIds(a.productId, b.productId));
}

/** Byte-wise id order, the same as PostgreSQL's "C" collation used for product ids. */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** True when an existing reservation was made for exactly these lines. */
export function sameLines(reserved: readonly StockLine[], requested: readonly StockLine[]): boolean {
  return reserved.length === requested.length && reserved.every((line, index) => line.productId === requested[index]?.productId && line.quantity === requested[index]?.quantity);
}

/** A page token binds the position to the filter it was issued for. */
interface PageCursor {
  readonly after: string;
  readonly text: string;
  readonly category: string;
}

export function encodePageToken(cursor: PageCursor): string {
  return Buffer.from(JSON.stringify([cursor.after, cursor.text, cursor.category])).toString("base64url");
}

export function decodePageToken(token: string, text: string, category: string): string | undefined {
  if (token === "") return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw new InvalidFieldError("page_token", "is not a token this service issued");
  }
  if (!Array.isArray(parsed) || parsed.length !== 3 || !parsed.every((part) => typeof part === "string")) {
    throw new InvalidFieldError("page_token", "is not a token this service issued");
  }
  const [after, tokenText, tokenCategory] = parsed as [string, string, string];
  if (tokenText !== text || tokenCategory !== category) {
    throw new InvalidFieldError("page_token", "was issued for a different query or category");
  }
  return after;
}
