import type { Knex } from "@meshwork/platform";
import {
  InsufficientStockError,
  ProductNotFoundError,
  ReservationMismatchError,
  ReservationReleasedError,
  sameLines,
  type ProductRecord,
  type ReservationRecord,
  type ReservedLine,
  type StockLine,
} from "../catalog.js";
import type { CatalogStore } from "../ports.js";

interface ProductRow {
  id: string;
  name: string;
  description: string;
  price_minor: number;
  currency: string;
  stock: number;
  categories: string[];
  image_url: string;
  updated_at: Date;
}

interface ReservationRow {
  order_id: string;
  state: "reserved" | "released";
  created_at: Date;
  updated_at: Date;
}

interface LineRow {
  product_id: string;
  quantity: number;
  unit_price_minor: number;
  currency: string;
}

const toProduct = (row: ProductRow): ProductRecord => ({
  id: row.id,
  name: row.name,
  description: row.description,
  priceMinor: row.price_minor,
  currency: row.currency,
  stock: row.stock,
  categories: row.categories,
  imageUrl: row.image_url,
  updatedAt: new Date(row.updated_at),
});

const escapeLike = (text: string): string => text.replace(/[\\%_]/g, (char) => `\\${char}`);

/**
 * The catalog on knex, for PostgreSQL and PGlite alike. Overselling is
 * impossible because stock only ever moves through one conditional UPDATE
 * (`stock >= quantity`), which PostgreSQL re-checks after waiting for any
 * concurrent writer of the row; lines are taken in product-id order so two
 * reservations can never deadlock on each other.
 */
export function createKnexCatalogStore(db: Knex): CatalogStore {
  const readReservation = async (trx: Knex | Knex.Transaction, orderId: string, lock: boolean): Promise<ReservationRecord | undefined> => {
    const query = trx<ReservationRow>("reservations").where("order_id", orderId);
    const row = await (lock ? query.forUpdate() : query).first();
    if (!row) return undefined;
    const lines: LineRow[] = await trx("reservation_lines").where("order_id", orderId).orderBy("product_id").select("product_id", "quantity", "unit_price_minor", "currency");
    return {
      orderId: row.order_id,
      state: row.state,
      lines: lines.map(
        (line): ReservedLine => ({
          productId: line.product_id,
          quantity: line.quantity,
          unitPriceMinor: line.unit_price_minor,
          currency: line.currency.trim(),
        }),
      ),
      createdAt: new Date(row.created_at),
      updatedAt: new Date(row.updated_at),
    };
  };

  const existingOutcome = (existing: ReservationRecord, lines: readonly StockLine[]): ReservationRecord => {
    if (existing.state === "released") throw new ReservationReleasedError(existing.orderId);
    if (!sameLines(existing.lines, lines)) throw new ReservationMismatchError(existing.orderId);
    return existing;
  };

  return {
    async listProducts({ afterId, limit, text, category }) {
      const query = db<ProductRow>("products").orderBy("id").limit(limit);
      if (afterId !== undefined) query.where("id", ">", afterId);
      if (text !== undefined) {
        const pattern = `%${escapeLike(text)}%`;
        query.where((where) => where.whereILike("name", pattern).orWhereILike("description", pattern));
      }
      if (category !== undefined) query.whereRaw("? = any(categories)", [category]);
      return (await query).map(toProduct);
    },

    async getProduct(id) {
      const row = await db<ProductRow>("products").where({ id }).first();
      return row ? toProduct(row) : undefined;
    },

    async reserve(orderId, lines) {
      return db.transaction(async (trx) => {
        // Claiming the order id first makes concurrent reservations of the same
        // order queue on the primary key: only the winner takes stock. A retry
        // finds the claim and gets the existing reservation back.
        const claimed: ReservationRow[] = await trx("reservations")
          .insert({ order_id: orderId, state: "reserved" })
          .onConflict("order_id")
          .ignore()
          .returning(["order_id", "state", "created_at", "updated_at"]);
        const claim = claimed[0];
        if (!claim) {
          const existing = await readReservation(trx, orderId, true);
          return existingOutcome(existing!, lines);
        }
        const reserved: ReservedLine[] = [];
        for (const line of lines) {
          const taken = await trx<ProductRow>("products")
            .where({ id: line.productId })
            .andWhere("stock", ">=", line.quantity)
            .update({ stock: trx.raw("stock - ?", [line.quantity]), updated_at: trx.fn.now() })
            .returning(["price_minor", "currency"]);
          const price = taken[0];
          if (!price) {
            const product = await trx<ProductRow>("products").where({ id: line.productId }).first("stock");
            throw product ? new InsufficientStockError(line.productId, line.quantity, product.stock) : new ProductNotFoundError(line.productId);
          }
          reserved.push({ productId: line.productId, quantity: line.quantity, unitPriceMinor: price.price_minor, currency: price.currency.trim() });
        }
        await trx("reservation_lines").insert(
          reserved.map((line) => ({ order_id: orderId, product_id: line.productId, quantity: line.quantity, unit_price_minor: line.unitPriceMinor, currency: line.currency })),
        );
        return { orderId, state: "reserved", lines: reserved, createdAt: new Date(claim.created_at), updatedAt: new Date(claim.updated_at) };
      });
    },

    async release(orderId) {
      return db.transaction(async (trx) => {
        const claimed = await trx("reservations").insert({ order_id: orderId, state: "released" }).onConflict("order_id").ignore().returning("order_id");
        if (claimed.length === 0) {
          const existing = (await readReservation(trx, orderId, true))!;
          if (existing.state === "reserved") {
            for (const line of existing.lines) {
              await trx("products")
                .where({ id: line.productId })
                .update({ stock: trx.raw("stock + ?", [line.quantity]), updated_at: trx.fn.now() });
            }
            await trx("reservations").where({ order_id: orderId }).update({ state: "released", updated_at: trx.fn.now() });
          }
        }
        return (await readReservation(trx, orderId, false))!;
      });
    },

    async seed(products) {
      if (products.length === 0) return 0;
      const inserted = await db("products")
        .insert(
          products.map((product) => ({
            id: product.id,
            name: product.name,
            description: product.description,
            price_minor: product.priceMinor,
            currency: product.currency,
            stock: product.stock,
            categories: [...product.categories],
            image_url: product.imageUrl,
          })),
        )
        .onConflict("id")
        .ignore()
        .returning("id");
      return inserted.length;
    },
  };
}
