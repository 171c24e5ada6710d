/**
 * What every CatalogStore adapter must do. The same suite runs against the
 * memory adapter, knex on PGlite and knex on PostgreSQL, so they cannot drift.
 */
import assert from "node:assert/strict";
import { describe, test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import { InsufficientStockError, ProductNotFoundError, ReservationMismatchError, ReservationReleasedError, type ProductRecord } from "../src/catalog.js";
import type { CatalogStore } from "../src/ports.js";

export type StoreFactory = (t: TestScope) => Promise<CatalogStore | undefined>;

const products: Omit<ProductRecord, "updatedAt">[] = [
  { id: "P-A", name: "Blue mug", description: "A mug", priceMinor: 1000, currency: "EUR", stock: 5, categories: ["kitchen"], imageUrl: "" },
  { id: "P-B", name: "Red pen", description: "Writes 100% red", priceMinor: 250, currency: "EUR", stock: 2, categories: ["office"], imageUrl: "" },
  { id: "P-C", name: "Green cup", description: "A cup for tea", priceMinor: 800, currency: "EUR", stock: 0, categories: ["kitchen", "tea"], imageUrl: "" },
];

const stockOf = async (store: CatalogStore, id: string): Promise<number | undefined> => (await store.getProduct(id))?.stock;

export function catalogStoreBehaviour(adapter: string, open: StoreFactory): void {
  describe(`CatalogStore behaviour: ${adapter}`, () => {
    const seeded = async (t: TestScope): Promise<CatalogStore | undefined> => {
      const store = await open(t);
      if (store) assert.equal(await store.seed(products), 3);
      return store;
    };

    test("seeding inserts only what is missing", async (t) => {
      const store = await seeded(t);
      if (!store) return;
      assert.equal(await store.seed(products), 0);
    });

    test("lists by id with paging, text and category filters", async (t) => {
      const store = await seeded(t);
      if (!store) return;
      assert.deepEqual(
        (await store.listProducts({ limit: 10 })).map((p) => p.id),
        ["P-A", "P-B", "P-C"],
      );
      assert.deepEqual(
        (await store.listProducts({ limit: 1, afterId: "P-A" })).map((p) => p.id),
        ["P-B"],
      );
      assert.deepEqual(
        (await store.listProducts({ limit: 10, text: "CUP" })).map((p) => p.id),
        ["P-C"],
      );
      assert.deepEqual(
        (await store.listProducts({ limit: 10, text: "100%" })).map((p) => p.id),
        ["P-B"],
        "% is matched literally",
      );
      assert.deepEqual(
        (await store.listProducts({ limit: 10, text: "_" })).map((p) => p.id),
        [],
        "_ is matched literally",
      );
      assert.deepEqual(
        (await store.listProducts({ limit: 10, category: "kitchen" })).map((p) => p.id),
        ["P-A", "P-C"],
      );
      const [first] = await store.listProducts({ limit: 1 });
      assert.deepEqual({ ...first, updatedAt: undefined }, { ...products[0], updatedAt: undefined }, "a product reads back as it was written");
      assert.ok(first?.updatedAt instanceof Date);
    });

    test("a reservation takes the stock once, records unit prices, and repeating it changes nothing", async (t) => {
      const store = await seeded(t);
      if (!store) return;
      const lines = [
        { productId: "P-A", quantity: 2 },
        { productId: "P-B", quantity: 1 },
      ];
      const first = await store.reserve("order-1", lines);
      assert.equal(first.state, "reserved");
      assert.deepEqual(first.lines, [
        { productId: "P-A", quantity: 2, unitPriceMinor: 1000, currency: "EUR" },
        { productId: "P-B", quantity: 1, unitPriceMinor: 250, currency: "EUR" },
      ]);
      const again = await store.reserve("order-1", lines);
      assert.deepEqual(again, first);
      assert.equal(await stockOf(store, "P-A"), 3);
      assert.equal(await stockOf(store, "P-B"), 1);
    });

    test("repeating a reservation after the rest of the stock is gone returns the reservation, not a refusal", async (t) => {
      const store = await seeded(t);
      if (!store) return;
      const first = await store.reserve("order-7", [{ productId: "P-B", quantity: 1 }]);
      await store.reserve("order-8", [{ productId: "P-B", quantity: 1 }]);
      assert.equal(await stockOf(store, "P-B"), 0);
      assert.deepEqual(await store.reserve("order-7", [{ productId: "P-B", quantity: 1 }]), first);
      assert.equal(await stockOf(store, "P-B"), 0);
    });

    test("insufficient stock on any line takes nothing at all", async (t) => {
      const store = await seeded(t);
      if (!store) return;
      await assert.rejects(
        store.reserve("order-2", [
          { productId: "P-A", quantity: 1 },
          { productId: "P-B", quantity: 3 },
        ]),
        (error: unknown) => error instanceof InsufficientStockError && error.productId === "P-B" && error.available === 2,
      );
      assert.equal(await stockOf(store, "P-A"), 5);
      assert.equal(await stockOf(store, "P-B"), 2);
      // The refusal is not remembered: with enough stock the same order can reserve.
      await store.reserve("order-2", [{ productId: "P-B", quantity: 2 }]);
      assert.equal(await stockOf(store, "P-B"), 0);
    });

    test("an unknown product is reported as such and takes nothing", async (t) => {
      const store = await seeded(t);
      if (!store) return;
      await assert.rejects(
        store.reserve("order-3", [
          { productId: "P-A", quantity: 1 },
          { productId: "P-ZZZ", quantity: 1 },
        ]),
        (error: unknown) => error instanceof ProductNotFoundError && error.productId === "P-ZZZ",
      );
      assert.equal(await stockOf(store, "P-A"), 5);
    });

    test("the same order with other lines is refused", async (t) => {
      const store = await seeded(t);
      if (!store) return;
      await store.reserve("order-4", [{ productId: "P-A", quantity: 1 }]);
      await assert.rejects(store.reserve("order-4", [{ productId: "P-A", quantity: 2 }]), ReservationMismatchError);
      assert.equal(await stockOf(store, "P-A"), 4);
    });

    test("release puts the stock back exactly once", async (t) => {
      const store = await seeded(t);
      if (!store) return;
      await store.reserve("order-5", [{ productId: "P-A", quantity: 4 }]);
      assert.equal(await stockOf(store, "P-A"), 1);
      const released = await store.release("order-5");
      assert.equal(released.state, "released");
      assert.equal(await stockOf(store, "P-A"), 5);
      await store.release("order-5");
      assert.equal(await stockOf(store, "P-A"), 5);
      await assert.rejects(store.reserve("order-5", [{ productId: "P-A", quantity: 4 }]), ReservationReleasedError);
      assert.equal(await stockOf(store, "P-A"), 5);
    });

    test("a release that arrives before its reservation blocks the late reservation", async (t) => {
      const store = await seeded(t);
      if (!store) return;
      const tombstone = await store.release("order-6");
      assert.equal(tombstone.state, "released");
      assert.deepEqual(tombstone.lines, []);
      await assert.rejects(store.reserve("order-6", [{ productId: "P-A", quantity: 1 }]), ReservationReleasedError);
      assert.equal(await stockOf(store, "P-A"), 5);
    });

    test("concurrent releases of one reservation give its stock back once", async (t) => {
      const store = await seeded(t);
      if (!store) return;
      await store.reserve("order-7", [
        { productId: "P-A", quantity: 3 },
        { productId: "P-B", quantity: 2 },
      ]);
      const releases = await Promise.all(Array.from({ length: 6 }, () => store.release("order-7")));
      assert.ok(releases.every((release) => release.state === "released" && release.lines.length === 2));
      assert.equal(await stockOf(store, "P-A"), 5);
      assert.equal(await stockOf(store, "P-B"), 2);
    });

    test("reservations and releases of orders racing each other leave the stock whole", async (t) => {
      const store = await seeded(t);
      if (!store) return;
      // Each order's release races its own reservation: whichever comes first, no stock stays taken.
      const orders = Array.from({ length: 5 }, (_, index) => `race-release-${index}`);
      const outcomes = await Promise.allSettled(orders.flatMap((orderId) => [store.reserve(orderId, [{ productId: "P-A", quantity: 1 }]), store.release(orderId)]));
      assert.ok(outcomes.every((outcome) => outcome.status === "fulfilled" || outcome.reason instanceof ReservationReleasedError));
      assert.equal(await stockOf(store, "P-A"), 5);
      for (const orderId of orders) assert.equal((await store.release(orderId)).state, "released");
    });

    test("concurrent reservations for the last units never oversell", async (t) => {
      const store = await seeded(t);
      if (!store) return;
      const outcomes = await Promise.allSettled(Array.from({ length: 12 }, (_, index) => store.reserve(`race-${index}`, [{ productId: "P-A", quantity: 1 }])));
      assert.equal(outcomes.filter((outcome) => outcome.status === "fulfilled").length, 5);
      assert.ok(outcomes.every((outcome) => outcome.status === "fulfilled" || outcome.reason instanceof InsufficientStockError));
      assert.equal(await stockOf(store, "P-A"), 0);
    });
  });
}
