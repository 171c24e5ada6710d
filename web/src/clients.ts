import { createClient } from "@connectrpc/connect";
import { MeshService } from "@meshwork/contracts/shop/gateway/v1/mesh";
import { NotificationService } from "@meshwork/contracts/shop/notifications/v1/notifications";
import { OrderService } from "@meshwork/contracts/shop/orders/v2/orders";
import { transport } from "./transport.js";

/** Clients for the server streams; unary calls go through connect-query's hooks. */
export const orderClient = createClient(OrderService, transport);
export const notificationClient = createClient(NotificationService, transport);
export const meshClient = createClient(MeshService, transport);
