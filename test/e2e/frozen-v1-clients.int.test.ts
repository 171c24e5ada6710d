/**
 * Old clients proven: the v1 clients as release 1.0.0 shipped them
 * (test/fixtures/frozen-v1/, generated from the released image, never from
 * proto/) against the current build of the whole shop (PostgreSQL, RabbitMQ,
 * the real notifications service) behind the real gateway.
 *
 * - TypeScript: every v1 RPC is called, streams included: the public ones
 *   through the gateway over Connect JSON (HTTP/1.1), Connect binary
 *   (HTTP/2), gRPC-web (HTTP/1.1) and gRPC (h2c), the internal ones (stock,
 *   payments) over gRPC on the service itself, as orders calls them.
 * - Python: the frozen stubs (Debian's grpcio) call every v1 RPC too: the
 *   public ones through the gateway's gRPC port, the internal ones on the
 *   services. client.py reports the RPCs it called.
 *
 * "Every v1 RPC" is read from the current contracts, not from the frozen
 * client: every RPC of every shop.*.v1 package that packages/contracts
 * generates from proto/ (other tests fail when it is stale). See v1Rpcs().
 *
 * The gateway's mesh status is off by default; it is turned on (public) here
 * because MeshService is part of the released v1 API.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readdir } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { needs } from "@meshwork/testing";
import { CatalogService, ReservationState, StockService } from "../fixtures/frozen-v1/ts/shop/catalog/v1/catalog_pb.js";
import { MeshService } from "../fixtures/frozen-v1/ts/shop/gateway/v1/mesh_pb.js";
import { IdentityService } from "../fixtures/frozen-v1/ts/shop/identity/v1/identity_pb.js";
import { NotificationService } from "../fixtures/frozen-v1/ts/shop/notifications/v1/notifications_pb.js";
import { OrderService, OrderStatus, type Order } from "../fixtures/frozen-v1/ts/shop/orders/v1/orders_pb.js";
import { PaymentService, PaymentStatus } from "../fixtures/frozen-v1/ts/shop/payments/v1/payments_pb.js";
import { runProcess } from "../support/run-process.js";
import { GENEROUS_LIMITS, startTestGateway, type RunningTestGateway } from "./gateway-harness.js";
import { startNotificationsCluster, type NotificationsCluster } from "./notifications-harness.js";
import { startShop, type Shop } from "./shop-harness.js";

const TIMEOUT = { timeout: 120_000 };
const frozenDir = path.resolve(import.meta.dirname, "..", "fixtures", "frozen-v1");
const FINAL = new Set([OrderStatus.CONFIRMED, OrderStatus.REJECTED, OrderStatus.FAILED]);
const PASSWORD = "correct horse battery";
/** Internal services: no route at the gateway (it answers UNIMPLEMENTED); callers reach them inside the mesh. */
const INTERNAL = new Set([StockService.typeName, PaymentService.typeName]);
/** Every protocol the gateway serves, each a whole public journey with its own shopper. */
const GATEWAY_TRANSPORTS: Readonly<Record<string, (baseUrl: string, interceptors: Interceptor[]) => Transport>> = {
  "Connect JSON over HTTP/1.1": (baseUrl, interceptors) => createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors }),
  "Connect binary over HTTP/2": (baseUrl, interceptors) => createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true, interceptors }),
  "gRPC-web over HTTP/1.1": (baseUrl, interceptors) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors }),
  "gRPC over h2c": (baseUrl, interceptors) => createGrpcTransport({ baseUrl, interceptors }),
};
const DIRECT = "gRPC to the service";

const contractsDir = path.resolve(import.meta.dirname, "..", "..", "packages", "contracts", "src", "gen");
const V1_PACKAGE = /^shop\.[a-z0-9_]+\.v1\./;

/**
 * v1 RPCs that proto/ gained after the frozen release ("<service>/<method>" →
 * the API release that added it). The frozen clients cannot call them: they
 * are release 1.0.0's and are never regenerated for a later release (see
 * test/fixtures/frozen-v1/README.md), so an RPC added to v1 later is proven by
 * the tests of the current contracts, not here. Listing it is the explicit
 * acknowledgement; until then this test fails, so no v1 addition goes
 * unnoticed. Empty so far: releases 1.1.0 and 1.2.0 added nothing to v1.
 */
const ADDED_AFTER_FROZEN_RELEASE: Readonly<Record<string, string>> = {};

/** Every service exported by the generated files (`*_pb.ts`) under `dir`. */
async function servicesIn(dir: string): Promise<DescService[]> {
  const services = new Map<string, DescService>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith("_pb.ts")) continue;
    const module = (await import(pathToFileURL(path.join(entry.parentPath, entry.name)).href)) as Record<string, unknown>;
    for (const value of Object.values(module)) {
      const candidate = value as Partial<DescService> | null;
      if (candidate?.kind === "service" && candidate.typeName) services.set(candidate.typeName, candidate as DescService);
    }
  }
  return [...services.values()];
}

const rpcNames = (services: readonly DescService[]): string[] => services.flatMap((service) => service.methods.map((method) => `${service.typeName}/${method.name}`));

/**
 * The v1 RPCs the frozen clients must call, "<service>/<method>", sorted:
 * every RPC of a shop.*.v1 package in the current contracts, less those
 * listed as added after the frozen release, plus any the frozen client has
 * (the gate refuses removing one before its package's sunset, and then the
 * frozen clients go too). Fails when proto/ has a v1 RPC that the frozen
 * client lacks and the list does not name, or the list names one wrongly.
 */
async function v1Rpcs(): Promise<string[]> {
  const current = rpcNames((await servicesIn(contractsDir)).filter((service) => V1_PACKAGE.test(service.typeName)));
  const frozen = rpcNames(await servicesIn(path.join(frozenDir, "ts")));
  assert.ok(current.length > 0 && frozen.length > 0, `${current.length} v1 RPCs in proto/, ${frozen.length} in the frozen client: did the files move?`);
  assert.deepEqual(
    current.filter((rpc) => !frozen.includes(rpc) && !(rpc in ADDED_AFTER_FROZEN_RELEASE)),
    [],
    "v1 RPCs in proto/ that the frozen client does not know: a frozen client cannot call an RPC added after its release; list them in ADDED_AFTER_FROZEN_RELEASE with the release that adds them",
  );
  assert.deepEqual(
    Object.keys(ADDED_AFTER_FROZEN_RELEASE).filter((rpc) => frozen.includes(rpc) || !current.includes(rpc)),
    [],
    "ADDED_AFTER_FROZEN_RELEASE names RPCs that the frozen client has (call them instead) or that proto/ lacks",
  );
  return [...new Set([...current.filter((rpc) => !(rpc in ADDED_AFTER_FROZEN_RELEASE)), ...frozen])].sort();
}

/** Records "<transport> <service>/<method>" once a call succeeded (for a stream: once a message arrived). */
function recorder(label: string, called: Set<string>): Interceptor {
  return (next) => async (request) => {
    const response = await next(request);
    const key = `${label} ${request.service.typeName}/${request.method.name}`;
    if (!response.stream) {
      called.add(key);
      return response;
    }
    const messages = response.message;
    return {
      ...response,
      message: (async function* () {
        for await (const message of messages) {
          called.add(key);
          yield message;
        }
      })(),
    };
  };
}

async function startFrozenShop(t: TestScope): Promise<{ shop: Shop; cluster: NotificationsCluster; gateway: RunningTestGateway } | undefined> {
  const shop = await startShop(t);
  if (!shop) return undefined;
  const cluster = await startNotificationsCluster(t, shop, { instances: 1 });
  if (!cluster) return undefined;
  const gateway = await startTestGateway(
    t,
    {
      GATEWAY_IDENTITY_ADDR: shop.addresses.identity,
      GATEWAY_CATALOG_ADDR: shop.addresses.catalog,
      GATEWAY_ORDERS_ADDR: shop.addresses.orders,
      GATEWAY_PAYMENTS_ADDR: shop.addresses.payments,
      GATEWAY_NOTIFICATIONS_ADDR: `127.0.0.1:${cluster.instances[0]!.port}`,
      GATEWAY_MESH_STATUS: "public",
      ...GENEROUS_LIMITS,
    },
    shop.defer,
  );
  return { shop, cluster, gateway };
}

/** Follows WatchOrder until the order is final; returns every status seen. */
async function followOrder(orders: Client<typeof OrderService>, orderId: string, headers: Record<string, string>): Promise<Order[]> {
  const seen: Order[] = [];
  // A signal, not timeoutMs: connect-es leaves a timeoutMs timer running when the loop breaks early.
  for await (const { order } of orders.watchOrder({ orderId }, { headers, signal: AbortSignal.timeout(30_000) })) {
    assert.ok(order, "WatchOrder sent an update without an order");
    seen.push(order);
    if (FINAL.has(order.status)) break;
  }
  return seen;
}

/** A shopper's whole v1 journey through the gateway with the frozen client on one transport. */
async function publicJourney(transport: Transport, cluster: NotificationsCluster): Promise<void> {
  const identity = createClient(IdentityService, transport);
  const email = `frozen-${randomUUID()}@example.test`;
  const { user } = await identity.signUp({ email, password: PASSWORD, displayName: "Frozen v1" });
  assert.equal(user?.email, email);
  const { accessToken } = await identity.signIn({ email, password: PASSWORD });
  // identity issues access tokens typed at+jwt (RFC 9068); the gateway accepts nothing else.
  const header = JSON.parse(Buffer.from(accessToken.split(".")[0]!, "base64url").toString("utf8")) as { typ?: string; kid?: string };
  assert.equal(header.typ, "at+jwt");
  const { keys } = await identity.getJwks({});
  assert.ok(
    keys.some((key) => key.kid === header.kid),
    "the token's key is not in the published key set",
  );
  const headers = { authorization: `Bearer ${accessToken}` };

  const catalog = createClient(CatalogService, transport);
  const { products } = await catalog.listProducts({ pageSize: 5 });
  assert.equal(products.length, 5);
  const { product } = await catalog.getProduct({ productId: "MW-HEADLAMP" });
  assert.equal(product?.name, "Headlamp");

  const notifications = createClient(NotificationService, transport);
  const watching = cluster.total().watchers;
  const abort = new AbortController();
  const feed = notifications.watchNotifications({}, { headers, signal: abort.signal })[Symbol.asyncIterator]();
  const first = feed.next();
  // The stream is "from now": the order is placed only once the service holds it.
  await cluster.until((total) => total.watchers > watching, 10_000);

  const orders = createClient(OrderService, transport);
  const { order } = await orders.placeOrder({ idempotencyKey: randomUUID(), items: [{ productId: "MW-HEADLAMP", quantity: 1 }], paymentMethod: { cardToken: "tok_visa" } }, { headers });
  assert.equal(order?.status, OrderStatus.PENDING);
  const seen = await followOrder(orders, order.id, headers);
  assert.equal(seen.at(-1)?.status, OrderStatus.CONFIRMED, seen.at(-1)?.reason);
  assert.equal((await orders.getOrder({ orderId: order.id }, { headers })).order?.status, OrderStatus.CONFIRMED);
  assert.deepEqual(
    (await orders.listOrders({}, { headers })).orders.map((listed) => listed.id),
    [order.id],
  );

  const arrived = await first;
  abort.abort();
  // Until the service lets go of this stream, the next journey could not tell its own watcher from this one.
  await cluster.until((total) => total.watchers <= watching, 10_000);
  assert.equal(arrived.done, false, "WatchNotifications ended without a notification");
  assert.equal(arrived.value.notification?.orderId, order.id);
  const { notifications: listed } = await notifications.listNotifications({ pageSize: 10 }, { headers });
  assert.ok(
    listed.some((notification) => notification.orderId === order.id),
    "ListNotifications lacks the order's notification",
  );

  const mesh = createClient(MeshService, transport);
  const status = await mesh.getMeshStatus({});
  assert.ok(
    status.services.some((service) => service.name.length > 0),
    "GetMeshStatus listed no service",
  );
  for await (const update of mesh.watchMeshStatus({ intervalMs: 1000 }, { signal: AbortSignal.timeout(15_000) })) {
    assert.ok(update.services.length > 0, "WatchMeshStatus sent no service");
    break;
  }
}

/** The internal RPCs, on the services themselves over gRPC, as orders calls them. */
async function internalCalls(shop: Shop, interceptors: Interceptor[]): Promise<void> {
  const orderId = `frozen-${randomUUID()}`;
  const stock = createClient(StockService, createGrpcTransport({ baseUrl: `http://${shop.addresses.catalog}`, interceptors }));
  const reserved = await stock.reserveStock({ orderId, items: [{ productId: "MW-HEADLAMP", quantity: 1 }] });
  assert.equal(reserved.reservation?.state, ReservationState.RESERVED);
  const released = await stock.releaseStock({ orderId });
  assert.equal(released.reservation?.state, ReservationState.RELEASED);

  const payments = createClient(PaymentService, createGrpcTransport({ baseUrl: `http://${shop.addresses.payments}`, interceptors }));
  const authorized = await payments.authorizePayment({ orderId, amount: { currencyCode: "EUR", amountMinor: 1999n }, cardToken: "tok_visa" });
  assert.equal(authorized.payment?.status, PaymentStatus.AUTHORIZED);
  const voided = await payments.voidPayment({ orderId });
  assert.equal(voided.payment?.status, PaymentStatus.VOIDED);
}

test("the frozen v1 TypeScript client calls every v1 RPC of the current contracts, streams included, against the current build", TIMEOUT, async (t) => {
  const expected = (await v1Rpcs()).flatMap((rpc) => (INTERNAL.has(rpc.split("/")[0]!) ? [`${DIRECT} ${rpc}`] : Object.keys(GATEWAY_TRANSPORTS).map((transport) => `${transport} ${rpc}`)));

  const started = await startFrozenShop(t);
  if (!started) return;
  const { shop, cluster, gateway } = started;
  const called = new Set<string>();
  for (const [label, transport] of Object.entries(GATEWAY_TRANSPORTS)) await publicJourney(transport(gateway.baseUrl, [recorder(label, called)]), cluster);
  await internalCalls(shop, [recorder(DIRECT, called)]);

  const missing = expected.filter((call) => !called.has(call));
  assert.deepEqual(missing, [], "v1 RPCs that no frozen-client call covered: add them to this test");
});

// ---------------------------------------------------------------------------
// Python: the frozen stubs, through the gateway's gRPC port and on the internal services

const PYTHON = "/usr/bin/python3";
const pythonClient = path.join(frozenDir, "client.py");
const pythonStubs = path.join(frozenDir, "python");
/** Whether a line of client.py's output says its WatchNotifications stream is open (it then waits for a line on stdin). */
const saysWatching = (line: string): boolean => line.startsWith("{") && (JSON.parse(line) as { watching?: unknown }).watching === true;

interface PythonResult {
  /** Every RPC that succeeded, "<service>/<method>" (a stream: once a message arrived). */
  called: string[];
}

interface PythonJourney extends PythonResult {
  user_id: string;
  jwks_kids: string[];
  products: string[];
  product_name: string;
  order_id: string;
  statuses: string[];
  got_status: string;
  listed_orders: string[];
  watched_notification_order_id: string;
  listed_notification_order_ids: string[];
  mesh_services: string[];
  watched_mesh_services: number;
}

interface PythonInternal extends PythonResult {
  reserved_state: string;
  released_state: string;
  authorized_status: string;
  voided_status: string;
}

/**
 * Runs client.py and returns the JSON of its last line. When it says it is
 * watching, `onWatching` runs and then client.py is told (a line on stdin) to go on.
 */
async function runPython(args: string[], onWatching?: () => Promise<unknown>): Promise<unknown> {
  // -I: isolated mode, so no PYTHONPATH, user site-packages or current directory leaks in.
  // -B: no __pycache__ written into the committed fixture.
  const child = spawn(PYTHON, ["-I", "-B", pythonClient, pythonStubs, ...args], { cwd: frozenDir, stdio: ["pipe", "pipe", "pipe"], timeout: 60_000, killSignal: "SIGKILL" });
  let stdout = "";
  let stderr = "";
  let failure: unknown;
  let watching = false;
  // A client.py that died before reading its go-ahead: its exit code tells, not an EPIPE.
  child.stdin.on("error", () => {});
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    if (watching || !stdout.split("\n").slice(0, -1).some(saysWatching)) return;
    watching = true;
    (onWatching ?? (async () => {}))().then(
      () => child.stdin.end("go\n"),
      (error: unknown) => {
        failure = error;
        child.kill("SIGKILL");
      },
    );
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (exitCode, exitSignal) => resolve([exitCode, exitSignal]));
  });
  if (failure) throw failure;
  assert.equal(code, 0, `the frozen Python client failed:\nexit ${code} ${signal ?? ""}\nstdout: ${stdout}\nstderr: ${stderr}`);
  return JSON.parse(stdout.trim().split("\n").at(-1)!);
}

test("the frozen v1 Python stubs call every v1 RPC, streams included: the public ones through the gateway, the internal ones on their services", TIMEOUT, async (t) => {
  const modules = await runProcess(PYTHON, ["-I", "-c", "import grpc, google.protobuf"], { cwd: frozenDir, timeoutMs: 30_000 }).catch((error: Error) => ({
    code: -1,
    stderr: error.message,
  }));
  if (!needs(t, "Python gRPC (Debian's python3-grpcio, python3-protobuf)", modules.code === 0 ? undefined : modules.stderr.trim())) return;
  const expected = await v1Rpcs();

  const started = await startFrozenShop(t);
  if (!started) return;
  const { shop, cluster, gateway } = started;

  const watchers = cluster.total().watchers;
  // WatchNotifications starts "from now": the order is placed only once the service holds the stream.
  const journey = (await runPython(["journey", `127.0.0.1:${gateway.port}`], () => cluster.until((total) => total.watchers > watchers, 10_000))) as PythonJourney;
  assert.match(journey.user_id, /\S/);
  assert.ok(journey.jwks_kids.length > 0, "GetJwks from Python listed no key");
  assert.equal(journey.products.length, 5);
  assert.equal(journey.product_name, "Headlamp");
  assert.equal(journey.statuses[0], "ORDER_STATUS_PENDING");
  assert.equal(journey.statuses.at(-1), "ORDER_STATUS_CONFIRMED");
  assert.equal(journey.got_status, "ORDER_STATUS_CONFIRMED");
  assert.deepEqual(journey.listed_orders, [journey.order_id]);
  assert.equal(journey.watched_notification_order_id, journey.order_id, "WatchNotifications from Python sent another order's notification");
  assert.ok(journey.listed_notification_order_ids.includes(journey.order_id), `ListNotifications from Python: ${JSON.stringify(journey.listed_notification_order_ids)}`);
  assert.ok(journey.mesh_services.length > 0, "GetMeshStatus from Python listed no service");
  assert.ok(journey.watched_mesh_services > 0, "WatchMeshStatus from Python sent no service");

  const internal = (await runPython(["internal", shop.addresses.catalog, shop.addresses.payments])) as PythonInternal;
  assert.deepEqual(
    [internal.reserved_state, internal.released_state, internal.authorized_status, internal.voided_status],
    ["RESERVATION_STATE_RESERVED", "RESERVATION_STATE_RELEASED", "PAYMENT_STATUS_AUTHORIZED", "PAYMENT_STATUS_VOIDED"],
  );

  const called = [...new Set([...journey.called, ...internal.called])].sort();
  assert.deepEqual(called, expected, "the v1 RPCs the frozen Python client called are not every v1 RPC: add the missing ones to client.py");
});
