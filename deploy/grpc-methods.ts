/**
 * The gRPC methods that exist in the mesh, read from the generated service
 * descriptors (the same ones the services' clients and servers use), so the
 * per-method checks compare against the contracts and not against a copy of
 * them. A name is "package.Service" (every method of it) or
 * "package.Service/Method" (one method).
 */
import type { DescService } from "@bufbuild/protobuf";
import { ServerReflection } from "@meshwork/contracts/grpc/reflection/v1/reflection";
import { Health } from "@meshwork/contracts/health/v1/health";
import { CatalogService, StockService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { NotificationService } from "@meshwork/contracts/shop/notifications/v1/notifications";
import { OrderService } from "@meshwork/contracts/shop/orders/v1/orders";
import { OrderService as OrderServiceV2 } from "@meshwork/contracts/shop/orders/v2/orders";
import { SalesService } from "@meshwork/contracts/shop/orders/v2/sales";
import { PaymentService } from "@meshwork/contracts/shop/payments/v1/payments";

const DESCRIPTORS: readonly DescService[] = [CatalogService, StockService, IdentityService, NotificationService, OrderService, OrderServiceV2, SalesService, PaymentService, Health, ServerReflection];
const BY_NAME = new Map(DESCRIPTORS.map((service) => [service.typeName, service]));

export const HEALTH_SERVICE = Health.typeName;
export const REFLECTION_SERVICE = ServerReflection.typeName;

/** The descriptor of a full service name, or an error naming it (a typo in a manifest must not pass as "matches nothing"). */
export function serviceDescriptor(name: string): DescService {
  const service = BY_NAME.get(name);
  if (!service) throw new Error(`${name} is not a gRPC service of this mesh (known: ${[...BY_NAME.keys()].join(", ")})`);
  return service;
}

/** "pkg.Service/Method" of every method of a service. */
export const methodsOfService = (name: string): string[] => serviceDescriptor(name).methods.map((method) => `${name}/${method.name}`);

/** Expands "pkg.Service" and "pkg.Service/Method" names into sorted, unique "pkg.Service/Method" names; unknown names throw. */
export function expandMethods(names: readonly string[]): string[] {
  const expanded = new Set<string>();
  for (const name of names) {
    const [service, method] = name.split("/");
    const all = methodsOfService(service!);
    if (method === undefined) {
      for (const each of all) expanded.add(each);
    } else if (all.includes(name)) {
      expanded.add(name);
    } else {
      throw new Error(`${service} has no method ${method}`);
    }
  }
  return [...expanded].sort();
}

/** True when the method (full "pkg.Service/Method") takes and returns one message. */
export const isUnary = (name: string): boolean => {
  const [service, method] = name.split("/");
  const found = serviceDescriptor(service!).methods.find((candidate) => candidate.name === method);
  if (!found) throw new Error(`${service} has no method ${method}`);
  return found.methodKind === "unary";
};

/** The client-side name (localName) of each method, keyed by it: "getProduct" -> "shop.catalog.v1.CatalogService/GetProduct". */
export const clientMethodNames = (service: string): Map<string, string> => new Map(serviceDescriptor(service).methods.map((method) => [method.localName, `${service}/${method.name}`]));
