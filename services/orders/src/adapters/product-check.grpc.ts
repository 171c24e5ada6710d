import type { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { Code, isRpcError, RpcError, type ServiceClient } from "@meshwork/platform";
import type { ProductCheck } from "../ports.js";

/** Asks the catalog (GetProduct, in parallel) which of the products it does not know. */
export function createGrpcProductCheck(catalog: ServiceClient<typeof CatalogService>, timeoutMs: number): ProductCheck {
  return {
    async unknownProducts(productIds) {
      const outcomes = await Promise.allSettled(productIds.map((productId) => catalog.getProduct({ productId }, { timeoutMs })));
      const unknown = new Set<string>();
      outcomes.forEach((outcome, index) => {
        if (outcome.status === "fulfilled") return;
        if (isRpcError(outcome.reason, Code.NOT_FOUND)) unknown.add(productIds[index]!);
        else throw new RpcError(Code.UNAVAILABLE, "the catalog cannot confirm the products right now; try again", { cause: outcome.reason });
      });
      return unknown;
    },
  };
}
