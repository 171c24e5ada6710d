/** Order events as orders publishes them, for the tests of this service. */
import { randomUUID } from "node:crypto";
import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { OrderStatusChangedSchema } from "@meshwork/contracts/shop/orders/v1/events";
import { OrderStatus } from "@meshwork/contracts/shop/orders/v1/orders";
import type { Delivery } from "@meshwork/platform";
import type { OrderEvent } from "../src/notifications.js";

export interface EventSpec {
  readonly eventId?: string;
  readonly schemaVersion?: number;
  readonly orderId?: string;
  readonly userId?: string;
  readonly status?: OrderStatus;
  readonly reason?: string;
  readonly quantities?: readonly number[];
  readonly totalMinor?: bigint;
}

export function orderEventMessage(spec: EventSpec = {}) {
  return create(OrderStatusChangedSchema, {
    eventId: spec.eventId ?? randomUUID(),
    schemaVersion: spec.schemaVersion ?? 1,
    order: {
      id: spec.orderId ?? randomUUID(),
      userId: spec.userId ?? "user-1",
      status: spec.status ?? OrderStatus.CONFIRMED,
      reason: spec.reason ?? "",
      lines: (spec.quantities ?? [2]).map((quantity, index) => ({ productId: `P-${index}`, quantity })),
      ...(spec.totalMinor === undefined ? {} : { total: { currencyCode: "EUR", amountMinor: spec.totalMinor } }),
    },
    previousStatus: OrderStatus.PENDING,
    occurTime: timestampNow(),
  });
}

/** The JSON body orders would publish. */
export const orderEventJson = (spec: EventSpec = {}): Uint8Array => Buffer.from(toJsonString(OrderStatusChangedSchema, orderEventMessage(spec)));
export const orderEventBinary = (spec: EventSpec = {}): Uint8Array => toBinary(OrderStatusChangedSchema, orderEventMessage(spec));

/** A delivery of a parsed event, as the task queue hands it to the handler. */
export function deliveryOf(event: OrderEvent, overrides: Partial<Delivery<OrderEvent>> = {}): Delivery<OrderEvent> {
  return {
    messageId: event.eventId,
    routingKey: `order.${event.status ?? "unknown"}`,
    type: OrderStatusChangedSchema.typeName,
    headers: { "schema-version": 1, "x-request-id": "req-1" },
    body: event,
    attempt: 1,
    ...overrides,
  };
}

export const eventOf = (spec: Partial<OrderEvent> = {}): OrderEvent => ({
  eventId: randomUUID(),
  schemaVersion: 1,
  orderId: randomUUID(),
  userId: "user-1",
  status: "confirmed",
  reason: "",
  itemCount: 1,
  total: { amountMinor: 1290n, currency: "EUR" },
  ...spec,
});
