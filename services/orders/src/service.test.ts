/**
 * The orders RPC handlers called directly, with no network: the real knex
 * store on in-memory PGlite, an in-memory catalog, and the saga driven by
 * hand one committed step at a time (as the saga runner commits them).
 */
import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  GetOrderRequestSchema,
  ListOrdersRequestSchema,
  OrderStatus,
  PlaceOrderRequestSchema,
  SagaStep,
  WatchOrderRequestSchema,
  type WatchOrderResponse,
  type WatchOrderResponseSchema,
} from "@meshwork/contracts/shop/orders/v1/orders";
import { bearerToken, Code, createWatchHub, isRpcError, type CallContext, type WatchHub } from "@meshwork/platform";
import { createTestCallContext, rejectsWith, type TestScope } from "@meshwork/testing";
import { eventFactory, orderStore, ordersDatabase } from "../test/support.js";
import type { OrderStore, ProductCheck } from "./ports.js";
import { decide, type StepResult } from "./saga.js";
import { createOrderHandlers } from "./service.js";

type WatchItem = MessageInitShape<typeof WatchOrderResponseSchema> | WatchOrderResponse;

/** Tests authenticate as the user named in `authorization: Bearer <user id>`. */
const authenticate = async (context: CallContext) => ({ userId: bearerToken(context), email: "" });
const as = (userId: string, signal?: AbortSignal): CallContext => createTestCallContext({ headers: { authorization: `Bearer ${userId}` }, ...(signal ? { signal } : {}) });

/** The catalog as PlaceOrder sees it: these products exist, no others. */
const KNOWN_PRODUCTS = new Set(["MW-TEA-TIN", "MW-CAST-PAN", "MW-RAIN-JACKET"]);
const catalog: ProductCheck = { unknownProducts: async (ids) => new Set(ids.filter((id) => !KNOWN_PRODUCTS.has(id))) };

/** What a test changes of a valid placement; `paymentMethod: undefined` leaves it out. */
interface PlacementInit {
  idempotencyKey?: string;
  items?: { productId: string; quantity: number }[];
  paymentMethod?: { cardToken: string } | undefined;
}

let keys = 0;
function placement(init: PlacementInit = {}) {
  const { paymentMethod, ...rest } = { paymentMethod: { cardToken: "tok_visa" }, ...init };
  return create(PlaceOrderRequestSchema, { idempotencyKey: `key-${++keys}-${Date.now()}`, items: [{ productId: "MW-TEA-TIN", quantity: 2 }], ...rest, ...(paymentMethod ? { paymentMethod } : {}) });
}

async function fixture(t: TestScope, options: { watchPollMs?: number; wrap?: (store: OrderStore) => OrderStore } = {}) {
  const db = (await ordersDatabase(t, "PGlite"))!;
  const store = orderStore(db);
  const hub = createWatchHub();
  const sagasStarted: string[] = [];
  const handlers = createOrderHandlers({
    store: options.wrap ? options.wrap(store) : store,
    authenticate,
    products: catalog,
    event: eventFactory,
    watchHub: hub,
    startSaga: (order) => void sagasStarted.push(order.id),
    // A minute: only a wake-up from the hub delivers a change within a test's bounds.
    watchPollMs: options.watchPollMs ?? 60_000,
  });
  const place = async (userId: string, init: PlacementInit = {}) => (await handlers.placeOrder(placement(init), as(userId))).order!;
  return { store, hub, handlers, sagasStarted, place };
}

/**
 * Takes the order's saga and commits steps of it by hand, each as the saga
 * runner would (store.apply with the state machine's decision), then wakes
 * this process's streams as main.ts's onChange does.
 */
async function sagaOf(store: OrderStore, hub: WatchHub, orderId: string) {
  const policy = { maxAttempts: 3, backoffBaseMs: 5, backoffMaxMs: 20 };
  let [saga] = await store.claim("test-runner", 1, 60_000, orderId);
  assert.ok(saga, "the saga is due");
  const commit = async (result: StepResult) => {
    const order = (await store.get(orderId))!;
    const applied = await store.apply(
      saga!,
      order,
      decide(saga!, result, policy, () => 0),
      60_000,
      eventFactory,
    );
    assert.ok(applied, "the lease held");
    saga = applied.saga;
    hub.notify(orderId);
    return applied.order;
  };
  return {
    reserve: async () => {
      const order = (await store.get(orderId))!;
      return commit({ kind: "reserved", lines: order.lines.map((line) => ({ productId: line.productId, quantity: line.quantity, unitPriceMinor: 450, currency: "EUR" })) });
    },
    authorize: () => commit({ kind: "authorized" }),
  };
}

/** `promise`, or a failure naming what did not happen within `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

function openWatch(handlers: ReturnType<typeof createOrderHandlers>, userId: string, orderId: string) {
  const abort = new AbortController();
  const iterator = handlers.watchOrder(create(WatchOrderRequestSchema, { orderId }), as(userId, abort.signal))[Symbol.asyncIterator]();
  return {
    abort,
    next: async (): Promise<IteratorResult<WatchItem>> => within(iterator.next(), 5000, "WatchOrder's next message"),
    /** The next message's order; fails when the stream ended. */
    async order() {
      const result = await this.next();
      if (result.done) throw new Error("the stream ended");
      return result.value.order!;
    },
  };
}

const steps = (order: { history?: readonly { step?: SagaStep }[] }) => order.history?.map((entry) => entry.step);

describe("order RPC handlers", () => {
  test("PlaceOrder refuses bad input with INVALID_ARGUMENT naming the field, and writes nothing", async (t) => {
    const { handlers, store, sagasStarted } = await fixture(t);
    const cases: [PlacementInit, string, RegExp][] = [
      [{ idempotencyKey: "short" }, "idempotency_key", /must be 8 to 64 characters/],
      [{ idempotencyKey: "has spaces in it" }, "idempotency_key", /letters, digits/],
      [{ items: [] }, "items", /at least one item/],
      [{ items: [{ productId: "", quantity: 1 }] }, "items[0].product_id", /is required/],
      [{ items: [{ productId: "MW-TEA-TIN", quantity: 0 }] }, "items[0].quantity", /from 1 to 1000/],
      [
        {
          items: [
            { productId: "MW-TEA-TIN", quantity: 1 },
            { productId: "MW-TEA-TIN", quantity: 2 },
          ],
        },
        "items[1].product_id",
        /twice/,
      ],
      [{ paymentMethod: { cardToken: "" } }, "payment_method.card_token", /is required/],
      [{ paymentMethod: undefined }, "payment_method.card_token", /is required/],
      // Unknown to the catalog, named by its place in the request (sorted, it would come first).
      [
        {
          items: [
            { productId: "MW-TEA-TIN", quantity: 1 },
            { productId: "MW-AAA-GONE", quantity: 1 },
          ],
        },
        "items[1].product_id",
        /unknown product MW-AAA-GONE/,
      ],
    ];
    for (const [init, field, problem] of cases) {
      const error = await handlers.placeOrder(placement(init), as("ada")).catch((caught: unknown) => caught);
      assert.ok(isRpcError(error, Code.INVALID_ARGUMENT) && error.field === field, `${field}: ${String(error)}`);
      assert.ok(error.message.startsWith(`${field}: `), error.message);
      assert.match(error.message, problem);
    }
    await rejectsWith(handlers.placeOrder(placement(), createTestCallContext()), Code.UNAUTHENTICATED, /missing authorization/);
    assert.deepEqual(await store.list("ada", 10, undefined), []);
    assert.equal(await store.pendingSagas(), 0);
    assert.deepEqual(sagasStarted, []);
  });

  test("PlaceOrder answers a PENDING order with the requested lines and the placement on its timeline, and starts its saga", async (t) => {
    const { place, sagasStarted } = await fixture(t);
    const order = await place("ada", {
      items: [
        { productId: "MW-TEA-TIN", quantity: 2 },
        { productId: "MW-CAST-PAN", quantity: 1 },
      ],
    });
    assert.equal(order.userId, "ada");
    assert.equal(order.status, OrderStatus.PENDING);
    assert.deepEqual(
      order.lines?.map((line) => [line.productId, line.quantity]),
      [
        ["MW-CAST-PAN", 1],
        ["MW-TEA-TIN", 2],
      ],
    );
    assert.deepEqual(steps(order), [SagaStep.ORDER_PLACED]);
    assert.deepEqual(sagasStarted, [order.id]);
  });

  test("the same idempotency key returns the same order and starts no second saga; with another request it is FAILED_PRECONDITION", async (t) => {
    const { handlers, place, store, sagasStarted } = await fixture(t);
    const request = placement({
      items: [
        { productId: "MW-TEA-TIN", quantity: 2 },
        { productId: "MW-CAST-PAN", quantity: 1 },
      ],
    });
    const first = (await handlers.placeOrder(request, as("ada"))).order!;
    const again = (await handlers.placeOrder(request, as("ada"))).order!;
    assert.deepEqual(again, first);
    // The same items listed in another order are the same request.
    const reordered = await place("ada", {
      idempotencyKey: request.idempotencyKey,
      items: [
        { productId: "MW-CAST-PAN", quantity: 1 },
        { productId: "MW-TEA-TIN", quantity: 2 },
      ],
    });
    assert.equal(reordered.id, first.id);
    assert.deepEqual(sagasStarted, [first.id]);
    await rejectsWith(
      handlers.placeOrder(placement({ idempotencyKey: request.idempotencyKey, items: [{ productId: "MW-TEA-TIN", quantity: 3 }] }), as("ada")),
      Code.FAILED_PRECONDITION,
      /already used for a different order/,
    );
    await rejectsWith(
      handlers.placeOrder(placement({ idempotencyKey: request.idempotencyKey, paymentMethod: { cardToken: "tok_other" } }), as("ada")),
      Code.FAILED_PRECONDITION,
      /already used for a different order/,
    );
    assert.equal((await store.list("ada", 10, undefined)).length, 1);
    // The key is the user's own: another user placing with it gets an order of their own.
    const bobs = await place("bob", { idempotencyKey: request.idempotencyKey });
    assert.notEqual(bobs.id, first.id);
    assert.equal(bobs.userId, "bob");
  });

  test("GetOrder returns the caller's order; a missing one and another user's are both NOT_FOUND; a malformed id names order_id", async (t) => {
    const { handlers, place } = await fixture(t);
    const placed = await place("ada");
    assert.deepEqual((await handlers.getOrder(create(GetOrderRequestSchema, { orderId: placed.id! }), as("ada"))).order, placed);
    await rejectsWith(handlers.getOrder(create(GetOrderRequestSchema, { orderId: "no-such-order" }), as("ada")), Code.NOT_FOUND, /^order no-such-order not found$/);
    // Refused exactly like a missing order, so its existence does not leak.
    await rejectsWith(handlers.getOrder(create(GetOrderRequestSchema, { orderId: placed.id! }), as("bob")), Code.NOT_FOUND, new RegExp(`^order ${placed.id} not found$`));
    await rejectsWith(handlers.getOrder(create(GetOrderRequestSchema, { orderId: "" }), as("ada")), Code.INVALID_ARGUMENT, /^order_id: is required/);
    await rejectsWith(handlers.getOrder(create(GetOrderRequestSchema, { orderId: "x".repeat(65) }), as("ada")), Code.INVALID_ARGUMENT, /^order_id: must be at most 64/);
    await rejectsWith(handlers.getOrder(create(GetOrderRequestSchema, { orderId: placed.id! }), createTestCallContext()), Code.UNAUTHENTICATED, /missing authorization/);
  });

  test("ListOrders pages through the caller's orders only, newest first, without repeats", async (t) => {
    const { handlers, place } = await fixture(t);
    const placed: string[] = [];
    for (let index = 0; index < 7; index++) {
      placed.push((await place("ada")).id!);
      await place("bob");
    }
    const seen: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await handlers.listOrders(create(ListOrdersRequestSchema, { pageSize: 3, pageToken }), as("ada"));
      pages++;
      assert.ok((page.orders ?? []).length <= 3);
      for (const order of page.orders ?? []) {
        assert.equal(order.userId, "ada");
        seen.push(order.id!);
      }
      pageToken = page.nextPageToken ?? "";
    } while (pageToken !== "");
    assert.equal(pages, 3);
    assert.deepEqual(seen, [...placed].reverse());
    assert.deepEqual(await handlers.listOrders(create(ListOrdersRequestSchema), as("nobody")), { orders: [], nextPageToken: "" });
  });

  test("bad paging is INVALID_ARGUMENT naming the field", async (t) => {
    const { handlers } = await fixture(t);
    for (const [request, field] of [
      [{ pageSize: 101 }, "page_size"],
      [{ pageSize: -1 }, "page_size"],
      [{ pageToken: "forged" }, "page_token"],
    ] as const) {
      const error = await handlers.listOrders(create(ListOrdersRequestSchema, request), as("ada")).catch((caught: unknown) => caught);
      assert.ok(isRpcError(error, Code.INVALID_ARGUMENT) && error.field === field, `${field}: ${String(error)}`);
    }
  });

  test("WatchOrder sends the order as it is, then each committed change, and ends when the order is final", async (t) => {
    const { handlers, place, store, hub } = await fixture(t);
    const placed = await place("ada");
    const saga = await sagaOf(store, hub, placed.id!);
    const watch = openWatch(handlers, "ada", placed.id!);
    const first = await watch.order();
    assert.equal(first.status, OrderStatus.PENDING);
    assert.deepEqual(steps(first), [SagaStep.ORDER_PLACED]);
    assert.equal(hub.watchers(), 1);

    await saga.reserve();
    const reserved = await watch.order();
    assert.equal(reserved.status, OrderStatus.PENDING);
    assert.deepEqual(steps(reserved), [SagaStep.ORDER_PLACED, SagaStep.STOCK_RESERVED]);
    assert.deepEqual(reserved.total, { currencyCode: "EUR", amountMinor: 900n });

    await saga.authorize();
    const confirmed = await watch.order();
    assert.equal(confirmed.status, OrderStatus.CONFIRMED);
    assert.deepEqual(steps(confirmed), [SagaStep.ORDER_PLACED, SagaStep.STOCK_RESERVED, SagaStep.PAYMENT_AUTHORIZED, SagaStep.ORDER_CONFIRMED]);
    assert.deepEqual(await watch.next(), { done: true, value: undefined });
    assert.equal(hub.watchers(), 0, "a finished stream leaves nothing subscribed");
  });

  test("WatchOrder does not sleep through a change committed between its read of the order and its wait", async (t) => {
    // The change lands right after the stream's first read returns: the read
    // shows the order PENDING with one step, the commit and its wake-up come
    // before the stream waits, and the poll is a minute away.
    let afterRead: (() => Promise<unknown>) | undefined;
    const setup = await fixture(t, {
      wrap: (inner) => ({
        ...inner,
        get: async (id) => {
          const found = await inner.get(id);
          const hook = afterRead;
          afterRead = undefined;
          await hook?.();
          return found;
        },
      }),
    });
    const placed = await setup.place("ada");
    const saga = await sagaOf(setup.store, setup.hub, placed.id!);
    afterRead = () => saga.reserve();
    const watch = openWatch(setup.handlers, "ada", placed.id!);
    assert.deepEqual(steps(await watch.order()), [SagaStep.ORDER_PLACED], "the first message is the state read before the change");
    assert.equal(afterRead, undefined, "the change was committed after that read");
    assert.deepEqual(steps(await watch.order()), [SagaStep.ORDER_PLACED, SagaStep.STOCK_RESERVED]);
    watch.abort.abort();
    assert.deepEqual(await watch.next(), { done: true, value: undefined });
    assert.equal(setup.hub.watchers(), 0, "a cancelled stream leaves nothing subscribed");
  });

  test("changes committed by another instance reach the stream through its poll", async (t) => {
    const { handlers, place, store } = await fixture(t, { watchPollMs: 20 });
    const placed = await place("ada");
    // Another instance's saga: it commits to the same database but wakes only its own streams.
    const elsewhere = await sagaOf(store, createWatchHub(), placed.id!);
    const watch = openWatch(handlers, "ada", placed.id!);
    await watch.order();
    await elsewhere.reserve();
    assert.deepEqual(steps(await watch.order()), [SagaStep.ORDER_PLACED, SagaStep.STOCK_RESERVED]);
    watch.abort.abort();
  });

  test("WatchOrder of another user's order is NOT_FOUND like a missing one; a malformed id names order_id", async (t) => {
    const { handlers, place, hub } = await fixture(t);
    const placed = await place("ada");
    await rejectsWith(openWatch(handlers, "bob", placed.id!).next(), Code.NOT_FOUND, new RegExp(`^order ${placed.id} not found$`));
    await rejectsWith(openWatch(handlers, "ada", "no-such-order").next(), Code.NOT_FOUND, /^order no-such-order not found$/);
    await rejectsWith(openWatch(handlers, "ada", "bad id").next(), Code.INVALID_ARGUMENT, /^order_id:/);
    assert.equal(hub.watchers(), 0, "a refused stream leaves nothing subscribed");
  });
});
