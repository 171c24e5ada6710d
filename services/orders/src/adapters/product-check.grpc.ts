import type { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { Code, isRpcError, RpcError, type ServiceClient } from "@meshwork/platform";
import type { ProductCheck } from "../ports.js";

export interface ProductCheckOptions {
  /** Deadline of each GetProduct. */
  readonly timeoutMs: number;
  /**
   * How long a product the catalog confirmed is taken as known without asking
   * again (0: ask every time). Only known products are remembered: an unknown
   * one is asked about every time, so a product added to the catalog is
   * accepted at once.
   */
  readonly knownForMs: number;
  /** Current time in ms (tests move it; default performance.now). */
  readonly now?: () => number;
}

/**
 * Asks the catalog (GetProduct, in parallel) which of the products it does
 * not know, remembering for `knownForMs` the ones it confirmed: a placement
 * is one call fewer (a round trip and a catalog read) for a product ordered
 * within that time. A product withdrawn meanwhile is still refused, by the
 * saga's reservation (NOT_FOUND: the order is rejected, "no longer sold"), as
 * one withdrawn between placement and reservation always was.
 */
export function createGrpcProductCheck(catalog: ServiceClient<typeof CatalogService>, options: ProductCheckOptions): ProductCheck {
  const now = options.now ?? (() => performance.now());
  /** Product id -> until when it counts as known. */
  const known = new Map<string, number>();
  return {
    async unknownProducts(productIds) {
      const at = now();
      const toAsk = productIds.filter((productId) => (known.get(productId) ?? Number.NEGATIVE_INFINITY) <= at);
      const outcomes = await Promise.allSettled(toAsk.map((productId) => catalog.getProduct({ productId }, { timeoutMs: options.timeoutMs })));
      const unknown = new Set<string>();
      outcomes.forEach((outcome, index) => {
        const productId = toAsk[index]!;
        if (outcome.status === "fulfilled") {
          if (options.knownForMs > 0) known.set(productId, at + options.knownForMs);
          return;
        }
        known.delete(productId);
        if (isRpcError(outcome.reason, Code.NOT_FOUND)) unknown.add(productId);
        else throw new RpcError(Code.UNAVAILABLE, "the catalog cannot confirm the products right now; try again", { cause: outcome.reason });
      });
      return unknown;
    },
  };
}
