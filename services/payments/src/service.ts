import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type PaymentService, PaymentStatus, type PaymentSchema } from "@meshwork/contracts/shop/payments/v1/payments";
import { Code, errorMapper, failedPrecondition, RpcError, unavailable, type ServiceHandlers } from "@meshwork/platform";
import { createAuthorizer, type AuthorizeDeps } from "./authorize.js";
import { AuthorizationInProgressError, checkAuthorization, checkOrderId, IdempotencyConflictError, ProcessorUnavailableError, type PaymentRecord } from "./payments.js";

/** The store, the processor and their time limits: what the authorize use case needs (voids need only the store). */
export type PaymentDeps = AuthorizeDeps;

export interface PaymentServiceParts {
  readonly handlers: ServiceHandlers<typeof PaymentService>;
  /** Resolves once every authorization now asking the processor has recorded its outcome (for shutdown). */
  settle(): Promise<void>;
}

const STATUS: Record<PaymentRecord["status"], PaymentStatus> = {
  pending: PaymentStatus.UNSPECIFIED,
  authorized: PaymentStatus.AUTHORIZED,
  declined: PaymentStatus.DECLINED,
  voided: PaymentStatus.VOIDED,
};

const paymentMessage = (payment: PaymentRecord): MessageInitShape<typeof PaymentSchema> => ({
  id: payment.id,
  orderId: payment.orderId,
  ...(payment.request ? { amount: { currencyCode: payment.request.currency, amountMinor: BigInt(payment.request.amountMinor) } } : {}),
  status: STATUS[payment.status],
  declineReason: payment.declineReason,
  createTime: timestampFromDate(payment.createdAt),
  updateTime: timestampFromDate(payment.updatedAt),
});

/** Maps the domain's refusals to status codes; anything else stays unknown (INTERNAL). */
function toRpcError(error: unknown): unknown {
  if (error instanceof RpcError) return error;
  if (error instanceof IdempotencyConflictError) return failedPrecondition(error.message);
  if (error instanceof ProcessorUnavailableError) return unavailable("the payment processor is unavailable; retry");
  if (error instanceof AuthorizationInProgressError) return unavailable(error.message);
  if (error instanceof Error && error.name === "AbortError") return new RpcError(Code.CANCELLED, "call cancelled by the client or its deadline");
  return error;
}

const mapped = errorMapper(toRpcError);

/**
 * AuthorizePayment and VoidPayment: each validates its request, runs the
 * use case (authorize.ts; a void is one store call) and answers with the
 * payment; domain errors leave as status codes through toRpcError.
 */
export function createPaymentService(deps: PaymentDeps): PaymentServiceParts {
  const authorizer = createAuthorizer(deps);

  const handlers: ServiceHandlers<typeof PaymentService> = {
    authorizePayment: (message, context) =>
      mapped(async () => {
        const request = checkAuthorization({ orderId: message.orderId, amount: message.amount, cardToken: message.cardToken });
        return { payment: paymentMessage(await authorizer.authorize(request, context)) };
      }),
    voidPayment: (message, context) =>
      mapped(async () => {
        const orderId = checkOrderId(message.orderId);
        const payment = await deps.store.void(orderId);
        context.log.info({ orderId, status: payment.status }, "payment void requested");
        return { payment: paymentMessage(payment) };
      }),
  };

  return { handlers, settle: () => authorizer.settle() };
}
