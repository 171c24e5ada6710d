/**
 * shop.orders.v2 beside v1 on one implementation, called directly with no
 * network: the real knex store on in-memory PGlite (migration 0005
 * included), an in-memory catalog.
 */
import assert from "node:assert/strict";
import { describe, test } from "vitest";
import { create } from "@bufbuild/protobuf";
import { PlaceOrderRequestSchema as PlaceOrderRequestV1Schema } from "@meshwork/contracts/shop/orders/v1/orders";
import { DeliveryOption, OrderSchema, OrderStatus, PlaceOrderRequestSchema, SagaStep, type ShippingAddress } from "@meshwork/contracts/shop/orders/v2/orders";
import { bearerToken, Code, createWatchHub, isRpcError, type CallContext } from "@meshwork/platform";
import { createTestCallContext, rejectsWith, type TestScope } from "@meshwork/testing";
import { eventFactory, orderStore, ordersDatabase } from "../test/support.js";
import { checkShipping, placementFingerprint, type OrderRecord } from "./orders.js";
import type { ProductCheck } from "./ports.js";
import { createOrderHandlers, createOrderOperations } from "./service.js";
import { createOrderHandlersV2 } from "./service-v2.js";

const authenticate = async (context: CallContext) => ({ userId: bearerToken(context), email: "" });
const as = (userId: string): CallContext => createTestCallContext({ headers: { authorization: `Bearer ${userId}` } });
const catalog: ProductCheck = { unknownProducts: async (ids) => new Set(ids.filter((id) => id !== "MW-TEA-TIN")) };

const ADDRESS = { recipientName: "Ada Lovelace", line1: "12 St James's Square", line2: "", city: "London", postalCode: "SW1Y 4JH", countryCode: "GB" };

let keys = 0;
const key = () => `v2-key-${++keys}-${Date.now()}`;

function placementV2(init: { address?: Partial<ShippingAddress> | undefined; delivery?: DeliveryOption; idempotencyKey?: string } = {}) {
  const address = "address" in init ? init.address : ADDRESS;
  return create(PlaceOrderRequestSchema, {
    idempotencyKey: init.idempotencyKey ?? key(),
    items: [{ productId: "MW-TEA-TIN", quantity: 2 }],
    paymentMethod: { cardToken: "tok_visa" },
    ...(address ? { shippingAddress: { ...ADDRESS, ...address } } : {}),
    deliveryOption: init.delivery ?? DeliveryOption.EXPRESS,
  });
}

async function fixture(t: TestScope) {
  const db = (await ordersDatabase(t, "PGlite"))!;
  const store = orderStore(db);
  const sagasStarted: string[] = [];
  const deps = { store, authenticate, products: catalog, event: eventFactory, watchHub: createWatchHub(), startSaga: (order: OrderRecord) => void sagasStarted.push(order.id), watchPollMs: 60_000 };
  const operations = createOrderOperations(deps);
  return { store, sagasStarted, v1: createOrderHandlers(deps, operations), v2: createOrderHandlersV2(deps, operations) };
}

describe("orders API v2 beside v1", () => {
  test("a v2 order keeps its shipping address and delivery option, through PlaceOrder, GetOrder, ListOrders and WatchOrder", async (t) => {
    const { v2, sagasStarted } = await fixture(t);
    const placed = (await v2.placeOrder(placementV2(), as("ada"))).order!;
    assert.equal(placed.status, OrderStatus.PENDING);
    assert.deepEqual(placed.shippingAddress, ADDRESS);
    assert.equal(placed.deliveryOption, DeliveryOption.EXPRESS);
    assert.deepEqual(
      placed.history?.map((entry) => entry.step),
      [SagaStep.ORDER_PLACED],
    );
    assert.deepEqual(sagasStarted, [placed.id]);
    const got = (await v2.getOrder({ orderId: placed.id! } as never, as("ada"))).order!;
    assert.deepEqual(got.shippingAddress, ADDRESS);
    assert.equal(got.deliveryOption, DeliveryOption.EXPRESS);
    const listed = (await v2.listOrders({ pageSize: 0, pageToken: "" } as never, as("ada"))).orders!;
    assert.deepEqual(
      listed.map((order) => [order.id, order.shippingAddress?.city, order.deliveryOption]),
      [[placed.id, "London", DeliveryOption.EXPRESS]],
    );
    const watched = await v2
      .watchOrder({ orderId: placed.id! } as never, as("ada"))
      [Symbol.asyncIterator]()
      .next();
    assert.equal(watched.value?.order?.shippingAddress?.postalCode, "SW1Y 4JH");
  });

  test("v2 PlaceOrder refuses an order without a shipping address or delivery option, or with a bad field, with INVALID_ARGUMENT naming it, and writes nothing", async (t) => {
    const { v2, store, sagasStarted } = await fixture(t);
    const cases: [ReturnType<typeof placementV2>, string][] = [
      [placementV2({ address: undefined }), "shipping_address"],
      [placementV2({ address: { recipientName: "  " } }), "shipping_address.recipient_name"],
      [placementV2({ address: { line1: "" } }), "shipping_address.line1"],
      [placementV2({ address: { line2: "x".repeat(201) } }), "shipping_address.line2"],
      [placementV2({ address: { city: "Lon\u0000don" } }), "shipping_address.city"],
      [placementV2({ address: { postalCode: "SW1Y/4JH" } }), "shipping_address.postal_code"],
      [placementV2({ address: { countryCode: "gb" } }), "shipping_address.country_code"],
      [placementV2({ delivery: DeliveryOption.UNSPECIFIED }), "delivery_option"],
      // A number this build does not know is no delivery option either.
      [placementV2({ delivery: 7 as DeliveryOption }), "delivery_option"],
    ];
    for (const [request, field] of cases) {
      const error = await v2.placeOrder(request, as("ada")).catch((caught: unknown) => caught);
      assert.ok(isRpcError(error, Code.INVALID_ARGUMENT) && error.field === field, `${field}: ${String(error)}`);
    }
    // The token is checked first: a caller without one learns nothing about the address rules.
    await rejectsWith(v2.placeOrder(placementV2({ address: undefined }), createTestCallContext()), Code.UNAUTHENTICATED, /missing authorization/);
    assert.deepEqual(await store.list("ada", 10, undefined), []);
    assert.deepEqual(sagasStarted, []);
  });

  test("a v1 order has no address: v1 answers as before, v2 shows it with none; a v2 order read through v1 is v1's view of it", async (t) => {
    const { v1, v2 } = await fixture(t);
    const request = create(PlaceOrderRequestV1Schema, { idempotencyKey: key(), items: [{ productId: "MW-TEA-TIN", quantity: 1 }], paymentMethod: { cardToken: "tok_visa" } });
    const fromV1 = (await v1.placeOrder(request, as("ada"))).order!;
    // The same key again through v1 is the same order: v1's idempotency is untouched.
    assert.equal((await v1.placeOrder(request, as("ada"))).order!.id, fromV1.id);
    // As a client decodes it: what the handler leaves out is the field's default.
    const seenByV2 = create(OrderSchema, (await v2.getOrder({ orderId: fromV1.id! } as never, as("ada"))).order!);
    assert.equal(seenByV2.shippingAddress, undefined);
    assert.equal(seenByV2.deliveryOption, DeliveryOption.UNSPECIFIED);

    const fromV2 = (await v2.placeOrder(placementV2(), as("ada"))).order!;
    const seenByV1 = (await v1.getOrder({ orderId: fromV2.id! } as never, as("ada"))).order!;
    assert.equal(seenByV1.id, fromV2.id);
    assert.deepEqual(Object.keys(seenByV1).sort(), ["createTime", "history", "id", "lines", "reason", "status", "updateTime", "userId"]);
  });

  test("the same key with another address is another request: FAILED_PRECONDITION, as for other items", async (t) => {
    const { v2 } = await fixture(t);
    const idempotencyKey = key();
    const first = (await v2.placeOrder(placementV2({ idempotencyKey }), as("ada"))).order!;
    assert.equal((await v2.placeOrder(placementV2({ idempotencyKey }), as("ada"))).order!.id, first.id);
    await rejectsWith(v2.placeOrder(placementV2({ idempotencyKey, address: { city: "Paris" } }), as("ada")), Code.FAILED_PRECONDITION, /already used/);
    await rejectsWith(v2.placeOrder(placementV2({ idempotencyKey, delivery: DeliveryOption.STANDARD }), as("ada")), Code.FAILED_PRECONDITION, /already used/);
  });
});

describe("placement fingerprint", () => {
  test("a v1 placement's fingerprint is what it was before v2, so keys used before the upgrade still match", () => {
    // Computed by the 1.0.0 code for this placement (items and card token only).
    const v1 = { idempotencyKey: "k-12345678", items: [{ productId: "MW-TEA-TIN", quantity: 2 }], cardToken: "tok_visa" };
    assert.equal(placementFingerprint(v1), "f72bea3301b4c40a919a605efaf26e2277787580811d142f696a733873512209");
    assert.notEqual(placementFingerprint({ ...v1, shipping: checkShipping(ADDRESS, "standard") }), placementFingerprint(v1));
  });
});
