/**
 * Reading shop.orders.v1.OrderStatusChanged off the wire. Anything that
 * cannot become a usable OrderEvent throws here, which the task queue takes
 * as "can never be handled": the message goes to the dead-letter queue with
 * the error's message as its reason, instead of being retried in vain.
 */
import { fromBinary, fromJsonString } from "@bufbuild/protobuf";
import { OrderStatusChangedSchema, type OrderStatusChanged } from "@meshwork/contracts/shop/orders/v1/events";
import { OrderStatus } from "@meshwork/contracts/shop/orders/v1/orders";
import { SUPPORTED_SCHEMA_VERSION, type OrderEvent, type OrderEventStatus } from "./notifications.js";

/** The message type orders puts on its events. */
export const ORDER_EVENT_TYPE = OrderStatusChangedSchema.typeName;

/** An event that is not a usable OrderStatusChanged. Its message is the dead-letter reason. */
export class MalformedEventError extends Error {
  override readonly name = "MalformedEventError";
}

/**
 * An event of a schema version this service does not understand. Dead-lettered
 * rather than dropped: once this service learns the version, the parked
 * events can be moved back to the queue and nobody misses a notification.
 */
export class UnsupportedSchemaVersionError extends Error {
  override readonly name = "UnsupportedSchemaVersionError";
  constructor(readonly schemaVersion: number) {
    super(`unsupported schema version ${schemaVersion} (this service reads version ${SUPPORTED_SCHEMA_VERSION})`);
  }
}

const STATUS: Partial<Record<OrderStatus, OrderEventStatus>> = {
  [OrderStatus.PENDING]: "placed",
  [OrderStatus.CONFIRMED]: "confirmed",
  [OrderStatus.REJECTED]: "rejected",
  [OrderStatus.FAILED]: "failed",
};

function decode(body: Uint8Array, contentType: string): OrderStatusChanged {
  const type = contentType.split(";")[0]!.trim().toLowerCase();
  try {
    if (type === "application/x-protobuf" || type === "application/protobuf") return fromBinary(OrderStatusChangedSchema, body);
    if (type === "application/json" || type === "") {
      // Unknown fields are skipped: orders may add fields to version 1 (a
      // compatible change buf allows), and that must not dead-letter every event.
      return fromJsonString(OrderStatusChangedSchema, new TextDecoder("utf-8", { fatal: true }).decode(body), { ignoreUnknownFields: true });
    }
  } catch (error) {
    // protobuf-es says "cannot decode message <type> from JSON: ..."; the type is in our own prefix already.
    const why = (error instanceof Error ? error.message : String(error)).replace(/^cannot decode message \S+ from \w+: /, "");
    throw new MalformedEventError(`not a ${ORDER_EVENT_TYPE}: ${why}`);
  }
  throw new MalformedEventError(`unsupported content type "${contentType}"`);
}

/** Parses and checks an order event; throws MalformedEventError or UnsupportedSchemaVersionError. */
export function parseOrderEvent(body: Uint8Array, contentType: string): OrderEvent {
  const message = decode(body, contentType);
  if (message.schemaVersion !== SUPPORTED_SCHEMA_VERSION) {
    if (message.schemaVersion === 0) throw new MalformedEventError("schema_version is missing");
    throw new UnsupportedSchemaVersionError(message.schemaVersion);
  }
  if (message.eventId === "") throw new MalformedEventError("event_id is missing");
  const order = message.order;
  if (!order) throw new MalformedEventError("order is missing");
  if (order.id === "") throw new MalformedEventError("order.id is missing");
  if (order.userId === "") throw new MalformedEventError("order.user_id is missing");
  return {
    eventId: message.eventId,
    schemaVersion: message.schemaVersion,
    orderId: order.id,
    userId: order.userId,
    // A status added by a newer orders service arrives as an unknown number
    // (binary, or JSON with the number) or, in JSON by name, is skipped and
    // reads as UNSPECIFIED: either way it is one this service cannot describe.
    status: STATUS[order.status],
    reason: order.reason,
    itemCount: order.lines.reduce((sum, line) => sum + line.quantity, 0),
    total: order.total && order.total.currencyCode !== "" ? { amountMinor: order.total.amountMinor, currency: order.total.currencyCode } : undefined,
  };
}
