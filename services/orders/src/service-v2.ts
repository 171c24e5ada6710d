import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { DeliveryOption, OrderStatus, SagaStep, type OrderSchema, type OrderService } from "@meshwork/contracts/shop/orders/v2/orders";
import type { ServiceHandlers } from "@meshwork/platform";
import { checkShipping, type DeliveryOption as DomainDelivery, type HistoryStep, type OrderRecord, type OrderStatus as DomainStatus } from "./orders.js";
import { createOrderOperations, type OrderOperations, type OrderServiceDeps } from "./service.js";

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

const DELIVERY: Record<DomainDelivery, DeliveryOption> = { standard: DeliveryOption.STANDARD, express: DeliveryOption.EXPRESS };

/** The contract's v2 delivery option in the domain's words; undefined for UNSPECIFIED or a number this build does not know. */
function domainDelivery(option: DeliveryOption): DomainDelivery | undefined {
  if (option === DeliveryOption.STANDARD) return "standard";
  if (option === DeliveryOption.EXPRESS) return "express";
  return undefined;
}

/** The v2 Order for a domain order: v1's, plus where and how it ships (unset for an order placed through v1). */
export function orderMessageV2(order: OrderRecord): MessageInitShape<typeof OrderSchema> {
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
    ...(order.shipping ? { shippingAddress: { ...order.shipping.address }, deliveryOption: DELIVERY[order.shipping.delivery] } : {}),
  };
}

/**
 * shop.orders.v2: the same operations as v1 (service.ts), with a shipping
 * address and delivery option that PlaceOrder requires.
 */
export function createOrderHandlersV2(deps: OrderServiceDeps, operations: OrderOperations = createOrderOperations(deps)): ServiceHandlers<typeof OrderService> {
  return {
    placeOrder: async (request, context) => {
      const order = await operations.place(
        {
          idempotencyKey: request.idempotencyKey,
          items: request.items.map((item) => ({ productId: item.productId, quantity: item.quantity })),
          cardToken: request.paymentMethod?.cardToken ?? "",
        },
        context,
        // Required in v2: an order nobody knows where to send cannot be fulfilled.
        () => checkShipping(request.shippingAddress, domainDelivery(request.deliveryOption)),
      );
      return { order: orderMessageV2(order) };
    },
    getOrder: async (request, context) => ({ order: orderMessageV2(await operations.get(request.orderId, context)) }),
    listOrders: async (request, context) => {
      const { orders, nextPageToken } = await operations.list(request.pageSize, request.pageToken, context);
      return { orders: orders.map(orderMessageV2), nextPageToken };
    },
    async *watchOrder(request, context) {
      for await (const order of operations.watch(request.orderId, context)) yield { order: orderMessageV2(order) };
    },
  };
}
