import type { StockService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { type PaymentService, PaymentStatus } from "@meshwork/contracts/shop/payments/v1/payments";
import { Code, isRpcError, REQUEST_ID_HEADER, type ServiceClient } from "@meshwork/platform";
import type { OrderLine, OrderRecord } from "../orders.js";
import type { SagaSteps } from "../ports.js";
import type { StepResult } from "../saga.js";

export interface SagaStepClients {
  readonly stock: ServiceClient<typeof StockService>;
  readonly payments: ServiceClient<typeof PaymentService>;
}

const transient = (error: unknown): StepResult => ({
  kind: "transient",
  reason: isRpcError(error) ? `${Code[error.code]}: ${error.message}` : error instanceof Error ? error.message : String(error),
});

/**
 * The saga's steps over gRPC. Business refusals (stock, card) become results
 * the state machine acts on; every other failure is transient and retried —
 * an unexpected status is safer retried to the attempt bound and compensated
 * than taken as a business answer.
 */
export function createGrpcSagaSteps({ stock, payments }: SagaStepClients): SagaSteps {
  const options = (order: OrderRecord, timeoutMs: number) => ({ timeoutMs, parent: null, headers: { [REQUEST_ID_HEADER]: order.requestId } });

  return {
    async reserveStock(order, timeoutMs) {
      try {
        const { reservation } = await stock.reserveStock({ orderId: order.id, items: order.lines.map((line) => ({ productId: line.productId, quantity: line.quantity })) }, options(order, timeoutMs));
        const prices = reservation?.unitPrices ?? {};
        const lines: Required<OrderLine>[] = order.lines.map((line) => {
          const price = prices[line.productId];
          if (!price) throw new Error(`catalog reserved ${line.productId} without a price`);
          return { productId: line.productId, quantity: line.quantity, unitPriceMinor: Number(price.amountMinor), currency: price.currencyCode };
        });
        return { kind: "reserved", lines };
      } catch (error) {
        if (isRpcError(error, Code.FAILED_PRECONDITION)) return { kind: "stock_refused", reason: error.message.replace(/^insufficient stock: /, "out of stock: ") };
        if (isRpcError(error, Code.NOT_FOUND)) return { kind: "stock_refused", reason: `no longer sold: ${error.message}` };
        return transient(error);
      }
    },

    async authorizePayment(order, timeoutMs) {
      const currencies = new Set(order.lines.map((line) => line.currency));
      if (order.totalMinor === undefined || order.currency === undefined || currencies.size !== 1) {
        return { kind: "payment_refused", reason: "the order has no single-currency total to charge" };
      }
      try {
        const { payment } = await payments.authorizePayment(
          { orderId: order.id, amount: { currencyCode: order.currency, amountMinor: BigInt(order.totalMinor) }, cardToken: order.cardToken },
          options(order, timeoutMs),
        );
        switch (payment?.status) {
          case PaymentStatus.AUTHORIZED:
            return { kind: "authorized" };
          case PaymentStatus.DECLINED:
            return { kind: "declined", reason: payment.declineReason || "card declined" };
          case PaymentStatus.VOIDED:
            return { kind: "payment_refused", reason: "the payment was cancelled before it was authorized" };
          default:
            return transient(new Error(`unexpected payment status ${String(payment?.status)}`));
        }
      } catch (error) {
        if (isRpcError(error, Code.FAILED_PRECONDITION)) return { kind: "payment_refused", reason: error.message };
        return transient(error);
      }
    },

    async compensate(order, authorizeAttempted, timeoutMs) {
      try {
        let paymentVoided = false;
        if (authorizeAttempted) {
          const { payment } = await payments.voidPayment({ orderId: order.id }, options(order, timeoutMs));
          paymentVoided = payment?.status === PaymentStatus.VOIDED;
        }
        const { reservation } = await stock.releaseStock({ orderId: order.id }, options(order, timeoutMs));
        return { kind: "compensated", paymentVoided, stockReleased: (reservation?.items.length ?? 0) > 0 };
      } catch (error) {
        return transient(error);
      }
    },
  };
}
