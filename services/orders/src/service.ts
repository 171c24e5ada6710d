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
  type PlacementRequest,
  type Shipping,
} from "./orders.js";
import type { ClaimedSaga, EventFactory, OrderStore, ProductCheck, SagaLease } from "./ports.js";

export interface OrderServiceDeps {
  readonly store: OrderStore;
  readonly authenticate: (context: CallContext) => Promise<AuthenticatedUser>;
  readonly products: ProductCheck;
  readonly event: EventFactory;
  /** Notified with the order id at every change this process commits (see main.ts). */
  readonly watchHub: WatchHub;
  /**
   * Starts the saga of a newly placed order at once (from the order as placed,
   * which spares it a read; with the saga when placement leased it).
   */
  readonly startSaga: (order: OrderRecord, saga?: ClaimedSaga) => void;
  /** Who a newly placed order's saga is leased to in the placement itself (the saga runner of this instance); none when absent. */
  readonly sagaLease?: SagaLease;
  /** How often a WatchOrder stream re-reads the order, for changes made by other instances. */
  readonly watchPollMs: number;
}

function toRpcError(error: unknown): unknown {
  if (error instanceof OrderNotFoundError) return notFound(error.message);
  if (error instanceof IdempotencyConflictError) return failedPrecondition(error.message);
  return error;
}

export const mapped = errorMapper(toRpcError);

/**
 * What both API versions do, on the domain's orders: each version's handlers
 * (v1 below, v2 in service-v2.ts) only translate their messages to and from
 * these, so one implementation serves both and v1 behaves as it always did.
 */
export interface OrderOperations {
  /**
   * Validates, checks the products and records the order (or returns the one
   * of the same key). `shipping` (v2) validates where and how the order ships;
   * it runs after authentication and the checks of the rest of the placement,
   * so a caller without a token learns nothing from it.
   */
  place(placement: Omit<PlacementRequest, "shipping">, context: CallContext, shipping?: () => Shipping): Promise<OrderRecord>;
  get(orderId: string, context: CallContext): Promise<OrderRecord>;
  list(pageSize: number, pageToken: string, context: CallContext): Promise<{ orders: OrderRecord[]; nextPageToken: string }>;
  /** The order now and after each change, until it is final. */
  watch(orderId: string, context: CallContext): AsyncGenerator<OrderRecord>;
}

export function createOrderOperations(deps: OrderServiceDeps): OrderOperations {
  const { store } = deps;

  /** An order of this user, or NOT_FOUND — also for another user's order, so its existence does not leak. */
  const ownOrder = async (user: AuthenticatedUser, orderId: string): Promise<OrderRecord> => {
    const order = await store.get(checkId("order_id", orderId));
    if (!order || order.userId !== user.userId) throw new OrderNotFoundError(orderId);
    return order;
  };

  return {
    place: (request, context, shipping) =>
      mapped(async () => {
        const user = await deps.authenticate(context);
        const placement = checkPlacement(shipping ? { ...request, shipping: shipping() } : request);
        const unknown = await deps.products.unknownProducts(placement.items.map((item) => item.productId));
        const firstUnknown = request.items.findIndex((item) => unknown.has(item.productId));
        if (firstUnknown >= 0) throw new InvalidFieldError(`items[${firstUnknown}].product_id`, `unknown product ${request.items[firstUnknown]!.productId}`);
        const { order, created, saga } = await store.place(
          { id: randomUUID(), userId: user.userId, requestId: context.requestId, request: placement, fingerprint: placementFingerprint(placement) },
          deps.event,
          deps.sagaLease,
        );
        if (created) {
          context.log.info({ orderId: order.id }, "order placed");
          deps.startSaga(order, saga);
        }
        return order;
      }),

    get: (orderId, context) =>
      mapped(async () => {
        const user = await deps.authenticate(context);
        return ownOrder(user, orderId);
      }),

    list: (pageSize, pageToken, context) =>
      mapped(async () => {
        const user = await deps.authenticate(context);
        const limit = checkPageSize(pageSize);
        const after = decodeOrderCursor(pageToken);
        const found = await store.list(user.userId, limit + 1, after);
        const page = found.slice(0, limit);
        const last = page.at(-1);
        return { orders: page, nextPageToken: found.length > limit && last ? encodeOrderCursor({ createdAt: last.createdAt, id: last.id }) : "" };
      }),

    async *watch(orderId, context) {
      const user = await mapped(() => deps.authenticate(context));
      // Subscribed before the first read: a change committed after any read
      // ends the next wait, so none is slept through until the poll.
      const changes = deps.watchHub.watch(orderId);
      try {
        let order = await mapped(() => ownOrder(user, orderId));
        yield order;
        while (!FINAL_STATUSES.has(order.status) && !context.signal.aborted) {
          await changes.changed(deps.watchPollMs, context.signal);
          if (context.signal.aborted) break;
          const latest = await store.get(order.id);
          if (!latest) throw new RpcError(Code.INTERNAL, "order vanished");
          if (latest.updatedAt.getTime() !== order.updatedAt.getTime() || latest.history.length !== order.history.length) {
            order = latest;
            yield order;
          }
        }
      } finally {
        changes.close();
      }
    },
  };
}

/**
 * shop.orders.v1 (deprecated): a v1 placement has no shipping address, and
 * is recorded as such; v1 answers leave out what v1 does not know.
 */
export function createOrderHandlers(deps: OrderServiceDeps, operations: OrderOperations = createOrderOperations(deps)): ServiceHandlers<typeof OrderService> {
  return {
    placeOrder: async (request, context) => {
      const order = await operations.place(
        {
          idempotencyKey: request.idempotencyKey,
          items: request.items.map((item) => ({ productId: item.productId, quantity: item.quantity })),
          cardToken: request.paymentMethod?.cardToken ?? "",
        },
        context,
      );
      return { order: orderMessage(order) };
    },
    getOrder: async (request, context) => ({ order: orderMessage(await operations.get(request.orderId, context)) }),
    listOrders: async (request, context) => {
      const { orders, nextPageToken } = await operations.list(request.pageSize, request.pageToken, context);
      return { orders: orders.map(orderMessage), nextPageToken };
    },
    async *watchOrder(request, context) {
      for await (const order of operations.watch(request.orderId, context)) yield { order: orderMessage(order) };
    },
  };
}
