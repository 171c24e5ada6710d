import { randomUUID } from "node:crypto";
import type { OrderService } from "@meshwork/contracts/shop/orders/v1/orders";
import { Code, errorMapper, failedPrecondition, notFound, RpcError, type AuthenticatedUser, type CallContext, type ServiceHandlers, type WatchHub } from "@meshwork/platform";
import { orderMessage } from "./messages.js";
import {
  checkId,
  checkPageSize,
  checkPlacement,
  decodeOrderCursor,
  encodeOrderCursor,
  FINAL_STATUSES,
  IdempotencyConflictError,
  InvalidFieldError,
  OrderNotFoundError,
  placementFingerprint,
  type OrderRecord,
} from "./orders.js";
import type { EventFactory, OrderStore, ProductCheck } from "./ports.js";

export interface OrderServiceDeps {
  readonly store: OrderStore;
  readonly authenticate: (context: CallContext) => Promise<AuthenticatedUser>;
  readonly products: ProductCheck;
  readonly event: EventFactory;
  /** Notified with the order id at every change this process commits (see main.ts). */
  readonly watchHub: WatchHub;
  /** Starts the saga of a newly placed order at once. */
  readonly startSaga: (orderId: string) => void;
  /** How often a WatchOrder stream re-reads the order, for changes made by other instances. */
  readonly watchPollMs: number;
}

function toRpcError(error: unknown): unknown {
  if (error instanceof OrderNotFoundError) return notFound(error.message);
  if (error instanceof IdempotencyConflictError) return failedPrecondition(error.message);
  return error;
}

const mapped = errorMapper(toRpcError);

export function createOrderHandlers(deps: OrderServiceDeps): ServiceHandlers<typeof OrderService> {
  const { store } = deps;

  /** An order of this user, or NOT_FOUND — also for another user's order, so its existence does not leak. */
  const ownOrder = async (user: AuthenticatedUser, orderId: string): Promise<OrderRecord> => {
    const order = await store.get(checkId("order_id", orderId));
    if (!order || order.userId !== user.userId) throw new OrderNotFoundError(orderId);
    return order;
  };

  return {
    placeOrder: (request, context) =>
      mapped(async () => {
        const user = await deps.authenticate(context);
        const placement = checkPlacement({
          idempotencyKey: request.idempotencyKey,
          items: request.items.map((item) => ({ productId: item.productId, quantity: item.quantity })),
          cardToken: request.paymentMethod?.cardToken ?? "",
        });
        const unknown = await deps.products.unknownProducts(placement.items.map((item) => item.productId));
        const firstUnknown = request.items.findIndex((item) => unknown.has(item.productId));
        if (firstUnknown >= 0) throw new InvalidFieldError(`items[${firstUnknown}].product_id`, `unknown product ${request.items[firstUnknown]!.productId}`);
        const { order, created } = await store.place(
          { id: randomUUID(), userId: user.userId, requestId: context.requestId, request: placement, fingerprint: placementFingerprint(placement) },
          deps.event,
        );
        if (created) {
          context.log.info({ orderId: order.id }, "order placed");
          deps.startSaga(order.id);
        }
        return { order: orderMessage(order) };
      }),

    getOrder: (request, context) =>
      mapped(async () => {
        const user = await deps.authenticate(context);
        return { order: orderMessage(await ownOrder(user, request.orderId)) };
      }),

    listOrders: (request, context) =>
      mapped(async () => {
        const user = await deps.authenticate(context);
        const limit = checkPageSize(request.pageSize);
        const after = decodeOrderCursor(request.pageToken);
        const found = await store.list(user.userId, limit + 1, after);
        const page = found.slice(0, limit);
        const last = page.at(-1);
        return {
          orders: page.map(orderMessage),
          nextPageToken: found.length > limit && last ? encodeOrderCursor({ createdAt: last.createdAt, id: last.id }) : "",
        };
      }),

    async *watchOrder(request, context) {
      const user = await mapped(() => deps.authenticate(context));
      // Subscribed before the first read: a change committed after any read
      // ends the next wait, so none is slept through until the poll.
      const changes = deps.watchHub.watch(request.orderId);
      try {
        let order = await mapped(() => ownOrder(user, request.orderId));
        yield { order: orderMessage(order) };
        while (!FINAL_STATUSES.has(order.status) && !context.signal.aborted) {
          await changes.changed(deps.watchPollMs, context.signal);
          if (context.signal.aborted) break;
          const latest = await store.get(order.id);
          if (!latest) throw new RpcError(Code.INTERNAL, "order vanished");
          if (latest.updatedAt.getTime() !== order.updatedAt.getTime() || latest.history.length !== order.history.length) {
            order = latest;
            yield { order: orderMessage(order) };
          }
        }
      } finally {
        changes.close();
      }
    },
  };
}
