import { randomUUID } from "node:crypto";
import { create, toJsonString, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { OrderStatusChangedSchema } from "@meshwork/contracts/shop/orders/v1/events";
import { OrderStatus, SagaStep, type OrderSchema } from "@meshwork/contracts/shop/orders/v1/orders";
import { REQUEST_ID_HEADER } from "@meshwork/platform";
import type { HistoryStep, OrderRecord, OrderStatus as DomainStatus } from "./orders.js";
import type { EventFactory } from "./ports.js";

const STATUS: Record<DomainStatus, OrderStatus> = {
  pending: OrderStatus.PENDING,
  confirmed: OrderStatus.CONFIRMED,
  rejected: OrderStatus.REJECTED,
  failed: OrderStatus.FAILED,
};

const STEP: Record<HistoryStep, SagaStep> = {
  order_placed: SagaStep.ORDER_PLACED,
  stock_reserved: SagaStep.STOCK_RESERVED,
  stock_refused: SagaStep.STOCK_REFUSED,
  payment_authorized: SagaStep.PAYMENT_AUTHORIZED,
  payment_declined: SagaStep.PAYMENT_DECLINED,
  payment_voided: SagaStep.PAYMENT_VOIDED,
  stock_released: SagaStep.STOCK_RELEASED,
  order_confirmed: SagaStep.ORDER_CONFIRMED,
  order_rejected: SagaStep.ORDER_REJECTED,
  order_failed: SagaStep.ORDER_FAILED,
};

/** The contract's Order for a domain order (the card token never leaves the service). */
export function orderMessage(order: OrderRecord): MessageInitShape<typeof OrderSchema> {
  return {
    id: order.id,
    userId: order.userId,
    lines: order.lines.map((line) => ({
      productId: line.productId,
      quantity: line.quantity,
      ...(line.unitPriceMinor !== undefined && line.currency ? { unitPrice: { currencyCode: line.currency, amountMinor: BigInt(line.unitPriceMinor) } } : {}),
    })),
    ...(order.totalMinor !== undefined && order.currency ? { total: { currencyCode: order.currency, amountMinor: BigInt(order.totalMinor) } } : {}),
    status: STATUS[order.status],
    reason: order.reason,
    history: order.history.map((entry) => ({ step: STEP[entry.step], detail: entry.detail, occurTime: timestampFromDate(entry.occurredAt) })),
    createTime: timestampFromDate(order.createdAt),
    updateTime: timestampFromDate(order.updatedAt),
  };
}

export const ORDER_EVENT_TYPE = OrderStatusChangedSchema.typeName;
export const ORDER_EVENT_SCHEMA_VERSION = 1;

/**
 * Builds the OrderStatusChanged event of a status change: JSON (the protobuf
 * JSON mapping, readable in the broker's UI), routed as "order.<status>",
 * with the request id (and, from the outbox, the W3C trace context).
 */
export function createOrderEventFactory(): EventFactory {
  return (order, previous) => {
    const eventId = randomUUID();
    const message = create(OrderStatusChangedSchema, {
      eventId,
      schemaVersion: ORDER_EVENT_SCHEMA_VERSION,
      order: orderMessage(order),
      previousStatus: previous ? STATUS[previous] : OrderStatus.UNSPECIFIED,
      occurTime: timestampFromDate(order.updatedAt),
    });
    return {
      messageId: eventId,
      routingKey: `order.${order.status === "pending" ? "placed" : order.status}`,
      body: Buffer.from(toJsonString(OrderStatusChangedSchema, message)),
      // The trace context is added by the outbox (enqueueOutbox) from the active span, when tracing is on.
      headers: { "schema-version": ORDER_EVENT_SCHEMA_VERSION, [REQUEST_ID_HEADER]: order.requestId },
    };
  };
}
