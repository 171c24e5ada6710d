import type { ProductQuery, ProductRecord, ReservationRecord, StockLine } from "./catalog.js";

/**
 * Where the catalog keeps its data. Adapters: knex (PostgreSQL or PGlite) and
 * memory; one behaviour suite (test/catalog-store.behaviour.ts) runs against all.
 */
export interface CatalogStore {
  /** Products matching the query, ordered by id, at most `limit`. */
  listProducts(query: ProductQuery): Promise<ProductRecord[]>;
  getProduct(id: string): Promise<ProductRecord | undefined>;
  /**
   * Takes `lines` (validated, ordered by product id) out of stock for the
   * order, all or nothing, never letting stock go below zero under any
   * concurrency. Idempotent: an existing reservation is returned unchanged.
   * Throws ProductNotFoundError, InsufficientStockError,
   * ReservationReleasedError or ReservationMismatchError.
   */
  reserve(orderId: string, lines: readonly StockLine[]): Promise<ReservationRecord>;
  /** Puts the order's stock back (once); records a release when nothing was reserved. */
  release(orderId: string): Promise<ReservationRecord>;
  /** Inserts the products that do not exist yet; returns how many were inserted. */
  seed(products: readonly Omit<ProductRecord, "updatedAt">[]): Promise<number>;
}
