import { compareIds, InsufficientStockError, ProductNotFoundError, ReservationMismatchError, ReservationReleasedError, sameLines, type ProductRecord, type ReservationRecord } from "../catalog.js";
import type { CatalogStore } from "../ports.js";

/**
 * The catalog in memory, for unit tests and benchmarks. Each operation runs
 * to completion without awaiting in between, which is what makes it atomic
 * here; the shared behaviour suite holds it to the knex adapter's semantics.
 */
export function createMemoryCatalogStore(clock: () => Date = () => new Date()): CatalogStore {
  const products = new Map<string, ProductRecord>();
  const reservations = new Map<string, ReservationRecord>();

  const sortedProducts = (): ProductRecord[] => [...products.values()].sort((a, b) => compareIds(a.id, b.id));

  return {
    async listProducts({ afterId, limit, text, category }) {
      const needle = text?.toLowerCase();
      return sortedProducts()
        .filter((product) => afterId === undefined || compareIds(product.id, afterId) > 0)
        .filter((product) => needle === undefined || product.name.toLowerCase().includes(needle) || product.description.toLowerCase().includes(needle))
        .filter((product) => category === undefined || product.categories.includes(category))
        .slice(0, limit);
    },

    async getProduct(id) {
      return products.get(id);
    },

    async reserve(orderId, lines) {
      const existing = reservations.get(orderId);
      if (existing) {
        if (existing.state === "released") throw new ReservationReleasedError(orderId);
        if (!sameLines(existing.lines, lines)) throw new ReservationMismatchError(orderId);
        return existing;
      }
      for (const line of lines) {
        const product = products.get(line.productId);
        if (!product) throw new ProductNotFoundError(line.productId);
        if (product.stock < line.quantity) throw new InsufficientStockError(line.productId, line.quantity, product.stock);
      }
      const now = clock();
      const reserved = lines.map((line) => {
        const product = products.get(line.productId)!;
        products.set(product.id, { ...product, stock: product.stock - line.quantity, updatedAt: now });
        return { ...line, unitPriceMinor: product.priceMinor, currency: product.currency };
      });
      const reservation: ReservationRecord = { orderId, state: "reserved", lines: reserved, createdAt: now, updatedAt: now };
      reservations.set(orderId, reservation);
      return reservation;
    },

    async release(orderId) {
      const now = clock();
      const existing = reservations.get(orderId);
      if (!existing) {
        const tombstone: ReservationRecord = { orderId, state: "released", lines: [], createdAt: now, updatedAt: now };
        reservations.set(orderId, tombstone);
        return tombstone;
      }
      if (existing.state === "released") return existing;
      for (const line of existing.lines) {
        const product = products.get(line.productId)!;
        products.set(product.id, { ...product, stock: product.stock + line.quantity, updatedAt: now });
      }
      const released: ReservationRecord = { ...existing, state: "released", updatedAt: now };
      reservations.set(orderId, released);
      return released;
    },

    async seed(records) {
      let inserted = 0;
      for (const record of records) {
        if (products.has(record.id)) continue;
        products.set(record.id, { ...record, updatedAt: clock() });
        inserted++;
      }
      return inserted;
    },
  };
}
