/**
 * The notifications domain: what an order event means to the shopper, as
 * the messages a real shop would e-mail, and the rules list requests must
 * satisfy. No gRPC, no SQL, no broker in this file.
 */
import { InvalidFieldError } from "@meshwork/platform/errors";

/** The order statuses this service knows how to tell a shopper about. */
export type OrderEventStatus = "placed" | "confirmed" | "rejected" | "failed";

/** An order event as this service reads it (see order-events.ts for the wire format). */
export interface OrderEvent {
  readonly eventId: string;
  readonly schemaVersion: number;
  readonly orderId: string;
  readonly userId: string;
  /** undefined for a status a newer orders service added that this one does not know. */
  readonly status: OrderEventStatus | undefined;
  readonly reason: string;
  /** Number of items (sum of quantities). */
  readonly itemCount: number;
  readonly total: Money | undefined;
}

export interface Money {
  readonly amountMinor: bigint;
  /** ISO 4217 code, e.g. "EUR". */
  readonly currency: string;
}

/** A notification before it is recorded. */
export interface NotificationDraft {
  readonly userId: string;
  readonly orderId: string;
  readonly subject: string;
  readonly body: string;
}

/** A recorded notification. */
export interface NotificationRecord extends NotificationDraft {
  readonly id: string;
  /** Position in the order of recording; later notifications have larger ones. Pages and streams follow it. */
  readonly seq: number;
  /** The event it was made from (its inbox entry). */
  readonly messageId: string;
  readonly createdAt: Date;
}

/** The only event schema version this service understands. */
export const SUPPORTED_SCHEMA_VERSION = 1;

/** The platform's field error, re-exported so domain code and tests name it from here. */
export { InvalidFieldError };

export const LIMITS = { defaultPageSize: 20, maxPageSize: 100 } as const;

export function checkPageSize(value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > LIMITS.maxPageSize) {
    throw new InvalidFieldError("page_size", `must be from 0 to ${LIMITS.maxPageSize} (0 means ${LIMITS.defaultPageSize})`);
  }
  return value === 0 ? LIMITS.defaultPageSize : value;
}

// The token is opaque to clients; the version tag lets a later format refuse
// old tokens cleanly instead of misreading them.
const TOKEN_TAG = "n1";

/** A page token that resumes the list after the notification at `seq`. */
export function encodePageToken(seq: number): string {
  return Buffer.from(JSON.stringify([TOKEN_TAG, seq])).toString("base64url");
}

/** The position a page token resumes after, or undefined for the first page. */
export function decodePageToken(token: string): number | undefined {
  if (token === "") return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    if (Array.isArray(parsed) && parsed.length === 2 && parsed[0] === TOKEN_TAG && Number.isSafeInteger(parsed[1]) && (parsed[1] as number) > 0) {
      return parsed[1] as number;
    }
  } catch {
    // fall through to the refusal below
  }
  throw new InvalidFieldError("page_token", "is not a token this service issued");
}

/**
 * "EUR 90.00" for 9000 minor units. The number of decimals comes from the
 * currency (JPY has none, BHD three); the arithmetic stays in bigint so no
 * amount is ever rounded through a float.
 */
export function formatMoney(money: Money): string {
  let digits = 2;
  try {
    digits = new Intl.NumberFormat("en", { style: "currency", currency: money.currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    // An unknown code still reads well with two decimals.
  }
  const negative = money.amountMinor < 0n;
  const units = (negative ? -money.amountMinor : money.amountMinor).toString().padStart(digits + 1, "0");
  const whole = units.slice(0, units.length - digits);
  const fraction = digits > 0 ? `.${units.slice(units.length - digits)}` : "";
  return `${money.currency} ${negative ? "-" : ""}${whole}${fraction}`;
}

const items = (count: number): string => (count === 1 ? "1 item" : `${count} items`);

/**
 * The notifications one order event makes: one per status a shopper cares
 * about. A status this service does not know makes none (the event is still
 * taken, so a newer orders service cannot jam the queue with it).
 */
export function notificationsFor(event: OrderEvent): NotificationDraft[] {
  const base = { userId: event.userId, orderId: event.orderId };
  const reason = event.reason.trim() === "" ? "no reason was given" : event.reason.trim();
  switch (event.status) {
    case "placed":
      return [{ ...base, subject: "Order received", body: `We received your order ${event.orderId} (${items(event.itemCount)}). We will write again as soon as it is confirmed.` }];
    case "confirmed":
      return [
        {
          ...base,
          subject: "Order confirmed",
          body: `Your order ${event.orderId} (${items(event.itemCount)}) is confirmed${event.total ? `. Total: ${formatMoney(event.total)}` : ""}.`,
        },
      ];
    case "rejected":
      return [{ ...base, subject: "Order not accepted", body: `We could not accept your order ${event.orderId}: ${reason}. Nothing was charged.` }];
    case "failed":
      return [{ ...base, subject: "Order not accepted", body: `Your order ${event.orderId} could not be completed: ${reason}. Nothing was charged; please try again later.` }];
    case undefined:
      return [];
  }
}
