import { runSql, sqlStatement, type Knex } from "@meshwork/platform";
import {
  compareIds,
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

/**
 * A reservation in one statement (one round trip, atomic without BEGIN and
 * COMMIT). It locks the products asked for in id order (the order every
 * reservation takes them in, so two never deadlock) and reads their latest
 * committed stock; only if every line can be served does it claim the order
 * id, and only a new claim takes the stock and records the lines. Nothing is
 * written when a line falls short: the statement answers which line (by
 * product id) and what is left. A second reservation of the same order waits
 * on the product locks, then finds the claim taken and writes nothing; the
 * caller reads the existing reservation then. The table's check (stock >= 0)
 * stays the last word: should the stock ever go below zero, the whole
 * statement fails, nothing is written, and reserve() runs it again.
 */
const RESERVE = sqlStatement(
  "catalog_reserve",
  `with wanted as (
     select product_id, quantity from unnest($2::text[], $3::integer[]) as wanted (product_id, quantity)
   ),
   locked as materialized (
     select id, stock from products where id = any($2::text[]) order by id for update
   ),
   short as (
     select wanted.product_id, wanted.quantity, locked.stock
       from wanted left join locked on locked.id = wanted.product_id
      where locked.stock is null or locked.stock < wanted.quantity
      order by wanted.product_id
      limit 1
   ),
   claim as (
     insert into reservations (order_id, state)
     select $1, 'reserved' where not exists (select 1 from short)
     on conflict (order_id) do nothing
     returning created_at, updated_at
   ),
   taken as (
     update products set stock = products.stock - wanted.quantity, updated_at = now()
       from wanted
      where products.id = wanted.product_id and exists (select 1 from claim)
     returning products.id as product_id, wanted.quantity, products.price_minor, products.currency
   ),
   recorded as (
     insert into reservation_lines (order_id, product_id, quantity, unit_price_minor, currency)
     select $1, product_id, quantity, price_minor, currency from taken
   )
   select (select created_at from claim) as created_at,
          (select updated_at from claim) as updated_at,
          (select json_agg(taken) from taken) as lines,
          (select product_id from short) as short_product_id,
          (select quantity from short) as short_quantity,
          (select stock from short) as short_stock`,
);

/** Runs of RESERVE before a reservation that keeps meeting the stock check gives up (each run waits for the writers before it). */
const RESERVE_ATTEMPTS = 3;

const isStockCheckViolation = (error: unknown): boolean => {
  const { code, constraint } = (error ?? {}) as { code?: unknown; constraint?: unknown };
  return code === "23514" && constraint === "products_stock_check";
};

interface ReserveRow {
  /** Null when the order id was not claimed: a line fell short, or the order has a reservation already. */
  created_at: Date | null;
  updated_at: Date | null;
  lines: { product_id: string; quantity: number; price_minor: number; currency: string }[] | null;
  /** The first line (by product id) that cannot be served, when one cannot; its stock is null for an unknown product. */
  short_product_id: string | null;
  short_quantity: number | null;
  short_stock: number | null;
}

/**
 * A release in one statement (one round trip instead of a transaction of up
 * to nine). Where the order has no reservation, it records a released one (a
 * tombstone that makes a late reservation fail); where the order's
 * reservation is still reserved, it locks the reservation's products in id
 * order (as RESERVE takes them, so the two never deadlock), gives their
 * stock back and marks it released; where it is released already, it
 * changes nothing. Each sub-statement sees the statement's snapshot, so a
 * reservation or release of the same order committed since then is not seen
 * and the statement writes nothing: it answers so (`settled` false) and
 * release() runs it again on the state as it is now.
 */
const RELEASE = sqlStatement(
  "catalog_release",
  `with tombstone as (
     insert into reservations (order_id, state) values ($1, 'released')
     on conflict (order_id) do nothing
     returning created_at, updated_at
   ),
   current as (
     select state, created_at, updated_at from reservations where order_id = $1
   ),
   locked as materialized (
     select id from products
      where id in (select product_id from reservation_lines where order_id = $1) and exists (select 1 from current where state = 'reserved')
      order by id
      for update
   ),
   released as (
     -- count(*) reads all of locked: every product is locked before any stock moves.
     update reservations set state = 'released', updated_at = now()
      where order_id = $1 and state = 'reserved' and (select count(*) from locked) > 0
     returning created_at, updated_at
   ),
   restocked as (
     update products set stock = products.stock + lines.quantity, updated_at = now()
       from reservation_lines as lines
      where lines.order_id = $1 and products.id = lines.product_id and exists (select 1 from released)
   )
   select coalesce((select created_at from tombstone), (select created_at from released), (select created_at from current where state = 'released')) as created_at,
          coalesce((select updated_at from tombstone), (select updated_at from released), (select updated_at from current where state = 'released')) as updated_at,
          exists (select 1 from tombstone) as tombstone,
          (select json_agg(lines order by lines.product_id) from (select product_id, quantity, unit_price_minor, currency from reservation_lines where order_id = $1) as lines) as lines`,
);

/** Runs of RELEASE before giving up on a reservation that keeps changing under it (each run sees what committed before it). */
const RELEASE_ATTEMPTS = 3;

interface ReleaseRow {
  /** Null when the statement saw the order's reservation change under it and wrote nothing. */
  created_at: Date | null;
  updated_at: Date | null;
  /** The release is a new tombstone: the order had no reservation. */
  tombstone: boolean;
  lines: { product_id: string; quantity: number; unit_price_minor: number | string; currency: string }[] | null;
}

const GET_PRODUCT = sqlStatement("catalog_get_product", "select id, name, description, price_minor, currency, stock, categories, image_url, updated_at from products where id = $1");

const escapeLike = (text: string): string => text.replace(/[\\%_]/g, (char) => `\\${char}`);

/**
 * The catalog on knex, for PostgreSQL and PGlite alike. Overselling is
 * impossible because a reservation takes stock only after locking the
 * products' rows and finding enough on each (RESERVE, one statement), and
 * the table's check (stock >= 0) fails the whole statement should it ever
 * not (and the statement runs again); rows are locked in product-id order so two reservations can never
 * deadlock on each other. The hot statements (RESERVE, RELEASE,
 * GET_PRODUCT) are prepared SQL (runSql); the rest is knex.
 */
export function createKnexCatalogStore(db: Knex): CatalogStore {
  const readReservation = async (orderId: string): Promise<ReservationRecord | undefined> => {
    const row = await db<ReservationRow>("reservations").where("order_id", orderId).first();
    if (!row) return undefined;
    const lines: LineRow[] = await db("reservation_lines").where("order_id", orderId).orderBy("product_id").select("product_id", "quantity", "unit_price_minor", "currency");
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
      const {
        rows: [row],
      } = await runSql<ProductRow>(db, GET_PRODUCT, [id]);
      return row ? toProduct(row) : undefined;
    },

    async reserve(orderId, lines) {
      const values = [orderId, lines.map((line) => line.productId), lines.map((line) => line.quantity)];
      let row: ReserveRow | undefined;
      for (let attempt = 1; !row; attempt++) {
        try {
          [row] = (await runSql<ReserveRow>(db, RESERVE, values)).rows;
          if (!row) throw new Error("the reservation statement returned no row");
        } catch (error) {
          // Stock that would go below zero fails the whole statement (the table's
          // check), so nothing was written: run it again on the stock as it is now.
          if (attempt >= RESERVE_ATTEMPTS || !isStockCheckViolation(error)) throw error;
        }
      }
      if (row.created_at && row.updated_at) {
        const reserved = (row.lines ?? [])
          .map((line): ReservedLine => ({ productId: line.product_id, quantity: line.quantity, unitPriceMinor: Number(line.price_minor), currency: line.currency.trim() }))
          .sort((a, b) => compareIds(a.productId, b.productId));
        return { orderId, state: "reserved", lines: reserved, createdAt: new Date(row.created_at), updatedAt: new Date(row.updated_at) };
      }
      // Not claimed: a retry (or a release that came first) finds the order's reservation; otherwise a line fell short.
      const existing = await readReservation(orderId);
      if (existing) return existingOutcome(existing, lines);
      if (row.short_product_id !== null) {
        throw row.short_stock === null ? new ProductNotFoundError(row.short_product_id) : new InsufficientStockError(row.short_product_id, row.short_quantity ?? 0, row.short_stock);
      }
      throw new Error(`order ${orderId}: neither reserved nor refused`);
    },

    async release(orderId) {
      for (let attempt = 1; attempt <= RELEASE_ATTEMPTS; attempt++) {
        const [row] = (await runSql<ReleaseRow>(db, RELEASE, [orderId])).rows;
        if (!row?.created_at || !row.updated_at) continue;
        const lines = row.tombstone ? [] : (row.lines ?? []);
        return {
          orderId,
          state: "released",
          lines: lines.map((line): ReservedLine => ({ productId: line.product_id, quantity: line.quantity, unitPriceMinor: Number(line.unit_price_minor), currency: line.currency.trim() })),
          createdAt: new Date(row.created_at),
          updatedAt: new Date(row.updated_at),
        };
      }
      throw new Error(`order ${orderId}: the reservation kept changing during its release`);
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
