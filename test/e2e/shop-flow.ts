/**
 * The shopper's whole flow through the gateway, as one reusable check: sign
 * up, sign in, browse, order, follow the order to CONFIRMED, and see exactly
 * one "Order confirmed" notification arrive on the live stream — once with a
 * Connect client (HTTP/1.1, JSON) and once with a grpc-js client.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createClient as createConnectClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { NotificationService, type Notification } from "@meshwork/contracts/shop/notifications/v1/notifications";
import { OrderService, OrderStatus } from "@meshwork/contracts/shop/orders/v1/orders";
import { createClient } from "@meshwork/platform";

/** What the flow needs of a client, whichever protocol carries it. */
interface ShopClients {
  signUp(email: string, password: string): Promise<void>;
  signIn(email: string, password: string): Promise<string>;
  firstProductId(): Promise<string>;
  placeOrder(token: string, productId: string): Promise<string>;
  followToFinal(token: string, orderId: string): Promise<OrderStatus>;
  watchNotifications(token: string, signal: AbortSignal, onNotification: (notification: Notification) => void): Promise<void>;
}

function connectClients(gatewayUrl: string): ShopClients {
  const transport = createConnectTransport({ baseUrl: gatewayUrl, httpVersion: "1.1" });
  const identity = createConnectClient(IdentityService, transport);
  const catalog = createConnectClient(CatalogService, transport);
  const orders = createConnectClient(OrderService, transport);
  const notifications = createConnectClient(NotificationService, transport);
  const auth = (token: string) => ({ authorization: `Bearer ${token}` });
  return {
    signUp: async (email, password) => void (await identity.signUp({ email, password, displayName: "Connect shopper" })),
    signIn: async (email, password) => (await identity.signIn({ email, password })).accessToken,
    firstProductId: async () => (await catalog.listProducts({ pageSize: 5 })).products[0]!.id,
    placeOrder: async (token, productId) =>
      (await orders.placeOrder({ idempotencyKey: `flow-${randomUUID()}`, items: [{ productId, quantity: 1 }], paymentMethod: { cardToken: "tok_visa" } }, { headers: auth(token) })).order!.id,
    followToFinal: async (token, orderId) => {
      for await (const { order } of orders.watchOrder({ orderId }, { headers: auth(token), signal: AbortSignal.timeout(30_000) })) {
        if (order && order.status !== OrderStatus.PENDING) return order.status;
      }
      throw new Error("the order stream ended before a final state");
    },
    watchNotifications: async (token, signal, onNotification) => {
      for await (const { notification } of notifications.watchNotifications({}, { headers: auth(token), signal })) onNotification(notification!);
    },
  };
}

function grpcClients(gatewayAddress: string): ShopClients & { close(): void } {
  const identity = createClient(IdentityService, { target: gatewayAddress });
  const catalog = createClient(CatalogService, { target: gatewayAddress });
  const orders = createClient(OrderService, { target: gatewayAddress });
  const notifications = createClient(NotificationService, { target: gatewayAddress });
  const auth = (token: string) => ({ authorization: `Bearer ${token}` });
  return {
    signUp: async (email, password) => void (await identity.client.signUp({ email, password, displayName: "gRPC shopper" })),
    signIn: async (email, password) => (await identity.client.signIn({ email, password })).accessToken,
    firstProductId: async () => (await catalog.client.listProducts({ pageSize: 5 })).products[0]!.id,
    placeOrder: async (token, productId) =>
      (await orders.client.placeOrder({ idempotencyKey: `flow-${randomUUID()}`, items: [{ productId, quantity: 1 }], paymentMethod: { cardToken: "tok_visa" } }, { headers: auth(token) })).order!.id,
    followToFinal: async (token, orderId) => {
      for await (const { order } of orders.client.watchOrder({ orderId }, { headers: auth(token), timeoutMs: 30_000 })) {
        if (order && order.status !== OrderStatus.PENDING) return order.status;
      }
      throw new Error("the order stream ended before a final state");
    },
    watchNotifications: async (token, signal, onNotification) => {
      for await (const { notification } of notifications.client.watchNotifications({}, { headers: auth(token), signal })) onNotification(notification!);
    },
    close: () =>
      [identity, catalog, orders, notifications].forEach((client) => {
        client.close();
      }),
  };
}

async function flow(clients: ShopClients): Promise<void> {
  const email = `flow-${randomUUID()}@example.test`;
  const password = "correct horse battery";
  await clients.signUp(email, password);
  const token = await clients.signIn(email, password);
  const productId = await clients.firstProductId();

  const stop = new AbortController();
  const seen: Notification[] = [];
  let confirmedArrived!: () => void;
  const confirmed = new Promise<void>((resolve) => (confirmedArrived = resolve));
  const watching = clients
    .watchNotifications(token, stop.signal, (notification) => {
      seen.push(notification);
      if (notification.subject === "Order confirmed") confirmedArrived();
    })
    .catch((error: unknown) => {
      if (!stop.signal.aborted) throw error;
    });
  // The stream starts from "now": give it a moment to be established before the order exists.
  await new Promise((resolve) => setTimeout(resolve, 300));

  const orderId = await clients.placeOrder(token, productId);
  assert.equal(await clients.followToFinal(token, orderId), OrderStatus.CONFIRMED);
  await Promise.race([confirmed, new Promise((_, reject) => setTimeout(() => reject(new Error(`no confirmation arrived; saw ${seen.map((n) => n.subject).join(", ")}`)), 20_000))]);
  // Duplicates would arrive right behind the first: wait for the stream to go quiet, then count.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  stop.abort();
  await watching;
  const aboutOrder = seen.filter((notification) => notification.orderId === orderId);
  assert.equal(aboutOrder.filter((notification) => notification.subject === "Order confirmed").length, 1, "exactly one confirmation");
  assert.equal(new Set(aboutOrder.map((notification) => notification.id)).size, aboutOrder.length, "no notification delivered twice");
}

/** Runs the flow through the gateway with a Connect client and with a grpc-js client. */
export async function shopperFlowThroughGateway(gatewayPort: number): Promise<void> {
  await flow(connectClients(`http://127.0.0.1:${gatewayPort}`));
  const grpc = grpcClients(`127.0.0.1:${gatewayPort}`);
  try {
    await flow(grpc);
  } finally {
    grpc.close();
  }
}
