import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type CatalogService, ReservationState, type StockService, type ProductSchema, type ReservationSchema } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { errorMapper, failedPrecondition, notFound, type ServiceHandlers } from "@meshwork/platform";
import {
  checkId,
  checkPageSize,
  checkStockLines,
  checkText,
  decodePageToken,
  encodePageToken,
  InsufficientStockError,
  LIMITS,
  ProductNotFoundError,
  ReservationMismatchError,
  ReservationReleasedError,
  type ProductRecord,
  type ReservationRecord,
} from "./catalog.js";
import type { CatalogStore } from "./ports.js";

export interface CatalogDeps {
  readonly store: CatalogStore;
}

const productMessage = (product: ProductRecord): MessageInitShape<typeof ProductSchema> => ({
  id: product.id,
  name: product.name,
  description: product.description,
  price: { currencyCode: product.currency, amountMinor: BigInt(product.priceMinor) },
  stockAvailable: product.stock,
  categories: [...product.categories],
  imageUrl: product.imageUrl,
  updateTime: timestampFromDate(product.updatedAt),
});

const reservationMessage = (reservation: ReservationRecord): MessageInitShape<typeof ReservationSchema> => ({
  orderId: reservation.orderId,
  items: reservation.lines.map((line) => ({ productId: line.productId, quantity: line.quantity })),
  state: reservation.state === "reserved" ? ReservationState.RESERVED : ReservationState.RELEASED,
  createTime: timestampFromDate(reservation.createdAt),
  updateTime: timestampFromDate(reservation.updatedAt),
  unitPrices: Object.fromEntries(reservation.lines.map((line) => [line.productId, { currencyCode: line.currency, amountMinor: BigInt(line.unitPriceMinor) }])),
});

/** Maps the domain's refusals to status codes; anything else stays unknown (INTERNAL). */
function toRpcError(error: unknown): unknown {
  if (error instanceof ProductNotFoundError) return notFound(error.message);
  if (error instanceof InsufficientStockError) return failedPrecondition(`insufficient stock: ${error.message}`);
  if (error instanceof ReservationReleasedError || error instanceof ReservationMismatchError) return failedPrecondition(error.message);
  return error;
}

const mapped = errorMapper(toRpcError);

export function createCatalogHandlers({ store }: CatalogDeps): ServiceHandlers<typeof CatalogService> {
  return {
    listProducts: (request) =>
      mapped(async () => {
        const limit = checkPageSize(request.pageSize);
        const text = checkText("query", request.query, LIMITS.maxQueryLength);
        const category = checkText("category", request.category, LIMITS.maxCategoryLength)?.toLowerCase();
        const afterId = decodePageToken(request.pageToken, text ?? "", category ?? "");
        // One more than asked tells whether a next page exists without a count query.
        const found = await store.listProducts({ afterId, limit: limit + 1, text, category });
        const page = found.slice(0, limit);
        const last = page.at(-1);
        return {
          products: page.map(productMessage),
          nextPageToken: found.length > limit && last ? encodePageToken({ after: last.id, text: text ?? "", category: category ?? "" }) : "",
        };
      }),
    getProduct: (request) =>
      mapped(async () => {
        const id = checkId("product_id", request.productId);
        const product = await store.getProduct(id);
        if (!product) throw new ProductNotFoundError(id);
        return { product: productMessage(product) };
      }),
  };
}

export function createStockHandlers({ store }: CatalogDeps): ServiceHandlers<typeof StockService> {
  return {
    reserveStock: (request) =>
      mapped(async () => {
        const orderId = checkId("order_id", request.orderId);
        const lines = checkStockLines(request.items);
        return { reservation: reservationMessage(await store.reserve(orderId, lines)) };
      }),
    releaseStock: (request) =>
      mapped(async () => {
        const orderId = checkId("order_id", request.orderId);
        return { reservation: reservationMessage(await store.release(orderId)) };
      }),
  };
}
