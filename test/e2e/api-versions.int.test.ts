/**
 * shop.orders v1 and v2 side by side (API 1.1.0), on the real shop
 * (PostgreSQL, RabbitMQ) behind the real gateway, on every protocol the
 * gateway speaks: a v2 order keeps where and how it ships; v1 still places
 * and follows orders as before; every v1 answer says it is deprecated and
 * when it ends (RFC 9745 Deprecation, RFC 8594 Sunset, with the dates
 * api/releases.json recorded), at the gateway and on the service itself, and
 * is counted per method; v2 answers carry neither. Reflection lists both.
 * A Python client with stubs generated from proto/ (Debian's protoc and
 * grpcio, sharing no code with the shop) uses both versions too.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { access, constants } from "node:fs/promises";
import path from "node:path";
import { test } from "vitest";
import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { ServerReflection, type ServerReflectionResponse } from "@meshwork/contracts/grpc/reflection/v1/reflection";
import { OrderService as OrderServiceV1, OrderStatus as OrderStatusV1 } from "@meshwork/contracts/shop/orders/v1/orders";
import { DeliveryOption, OrderService as OrderServiceV2, OrderStatus, type Order } from "@meshwork/contracts/shop/orders/v2/orders";
import { startGateway } from "@meshwork/gateway";
import { createSilentLogger } from "@meshwork/platform";
import { needs } from "@meshwork/testing";
import { readReleaseLog } from "../../scripts/lib/api-gate.js";
import { runProcess, tempDir } from "../support/run-process.js";
import { CLOSED_ADDRESS } from "./gateway-harness.js";
import { newShopper, startShopBehindGateway } from "./shop-harness.js";

const root = path.resolve(import.meta.dirname, "..", "..");
const FINAL = new Set([OrderStatus.CONFIRMED, OrderStatus.REJECTED, OrderStatus.FAILED]);
const ADDRESS = { recipientName: "Grace Hopper", line1: "1 Navy Yard", line2: "Building 7", city: "Arlington", postalCode: "22202", countryCode: "US" };

/** The headers v1 answers must carry, from api/releases.json as the release recorded it (not from the code that sends them). */
async function expectedDeprecation(): Promise<{ deprecation: string; sunset: string }> {
  const last = (await readReleaseLog(root)).releases.at(-1)!;
  const record = last.packages["shop.orders.v1"];
  assert.ok(record?.deprecated && record.sunset, `release ${last.version} records no deprecation of shop.orders.v1`);
  const sunset = new Date(`${record.sunset}T00:00:00Z`);
  // RFC 8594's HTTP-date, IMF-fixdate form: "Wed, 30 Jun 2027 00:00:00 GMT".
  const days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const imfFixdate = `${days[sunset.getUTCDay()]}, ${String(sunset.getUTCDate()).padStart(2, "0")} ${months[sunset.getUTCMonth()]} ${sunset.getUTCFullYear()} 00:00:00 GMT`;
  return { deprecation: `@${Date.parse(`${record.deprecated}T00:00:00Z`) / 1000}`, sunset: imfFixdate };
}

/** Call options that keep the response headers (for a stream too) of one call. */
function keepHeaders(authorization: Record<string, string>) {
  const seen: { headers?: Headers } = {};
  return {
    seen,
    options: {
      headers: authorization,
      onHeader: (headers: Headers) => {
        seen.headers = headers;
      },
    },
  };
}

async function followV2(orders: Client<typeof OrderServiceV2>, orderId: string, authorization: Record<string, string>): Promise<{ last: Order; headers: Headers | undefined }> {
  const { seen, options } = keepHeaders(authorization);
  let last: Order | undefined;
  for await (const { order } of orders.watchOrder({ orderId }, { ...options, signal: AbortSignal.timeout(30_000) })) {
    assert.ok(order);
    last = order;
    if (FINAL.has(order.status)) break;
  }
  assert.ok(last, "WatchOrder sent nothing");
  return { last, headers: seen.headers };
}

const metricsOf = async (port: number): Promise<string> => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();

/** The value of meshwork_api_deprecated_calls_total for a method, 0 when there is no series. */
function deprecatedCalls(metrics: string, service: string, method: string): number {
  const line = metrics
    .split("\n")
    .find((candidate) => candidate.startsWith("meshwork_api_deprecated_calls_total{") && candidate.includes(`grpc_service="${service}"`) && candidate.includes(`grpc_method="${method}"`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
}

test("v1 and v2 orders side by side through the gateway on Connect JSON, Connect binary, gRPC-web and gRPC: v2 keeps its address, v1 behaves as before and says it is deprecated, counted per method", {
  timeout: 240_000,
}, async (t) => {
  const expected = await expectedDeprecation();
  const started = await startShopBehindGateway(t);
  if (!started) return;
  const { shop, gateway } = started;
  const baseUrl = `http://127.0.0.1:${gateway.port}`;
  const transports: Record<string, Transport> = {
    "Connect JSON": createConnectTransport({ baseUrl, httpVersion: "1.1" }),
    "Connect binary": createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true }),
    "gRPC-web": createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
    gRPC: createGrpcTransport({ baseUrl }),
  };
  const { headers: authorization } = await newShopper(shop, "versions");

  for (const [protocol, transport] of Object.entries(transports)) {
    const v2 = createClient(OrderServiceV2, transport);
    const v1 = createClient(OrderServiceV1, transport);

    // v2: the address and the delivery option round-trip, through the saga, and no deprecation is announced.
    const placedV2 = keepHeaders(authorization);
    const { order } = await v2.placeOrder(
      { idempotencyKey: randomUUID(), items: [{ productId: "MW-HEADLAMP", quantity: 1 }], paymentMethod: { cardToken: "tok_visa" }, shippingAddress: ADDRESS, deliveryOption: DeliveryOption.EXPRESS },
      placedV2.options,
    );
    assert.ok(order, protocol);
    assert.equal(order.status, OrderStatus.PENDING, protocol);
    assert.deepEqual({ ...order.shippingAddress, $typeName: undefined }, { ...ADDRESS, $typeName: undefined }, protocol);
    assert.equal(order.deliveryOption, DeliveryOption.EXPRESS, protocol);
    assert.equal(placedV2.seen.headers?.get("deprecation"), null, `${protocol}: a v2 answer announced a deprecation`);
    assert.equal(placedV2.seen.headers?.get("sunset"), null, `${protocol}: a v2 answer announced a sunset`);
    const followed = await followV2(v2, order.id, authorization);
    assert.equal(followed.last.status, OrderStatus.CONFIRMED, `${protocol}: ${followed.last.reason}`);
    assert.equal(followed.last.shippingAddress?.city, ADDRESS.city, protocol);
    assert.ok(followed.last.total && followed.last.lines[0]?.unitPrice, `${protocol}: the confirmed v2 order has no prices`);
    assert.equal(followed.headers?.get("deprecation"), null, `${protocol}: the v2 stream announced a deprecation`);
    const gotV2 = await v2.getOrder({ orderId: order.id }, { headers: authorization });
    assert.equal(gotV2.order?.shippingAddress?.postalCode, ADDRESS.postalCode, protocol);

    // v2 refuses an order without an address, naming the field.
    const refused = await v2
      .placeOrder(
        { idempotencyKey: randomUUID(), items: [{ productId: "MW-HEADLAMP", quantity: 1 }], paymentMethod: { cardToken: "tok_visa" }, deliveryOption: DeliveryOption.STANDARD },
        { headers: authorization },
      )
      .then(
        () => assert.fail(`${protocol}: a v2 order without an address was accepted`),
        (error: unknown) => ConnectError.from(error),
      );
    assert.equal(refused.code, Code.InvalidArgument, protocol);
    assert.match(refused.rawMessage, /^shipping_address: is required/, protocol);

    // v1: as before (no address asked, the saga confirms), every answer deprecated with the recorded dates.
    const placedV1 = keepHeaders(authorization);
    const { order: v1Order } = await v1.placeOrder({ idempotencyKey: randomUUID(), items: [{ productId: "MW-HEADLAMP", quantity: 1 }], paymentMethod: { cardToken: "tok_visa" } }, placedV1.options);
    assert.equal(v1Order?.status, OrderStatusV1.PENDING, protocol);
    assert.equal(placedV1.seen.headers?.get("deprecation"), expected.deprecation, `${protocol}: PlaceOrder v1`);
    assert.equal(placedV1.seen.headers?.get("sunset"), expected.sunset, `${protocol}: PlaceOrder v1`);
    const watchedV1 = keepHeaders(authorization);
    let lastV1: OrderStatusV1 | undefined;
    for await (const update of v1.watchOrder({ orderId: v1Order!.id }, { ...watchedV1.options, signal: AbortSignal.timeout(30_000) })) {
      lastV1 = update.order?.status;
      if (lastV1 !== OrderStatusV1.PENDING) break;
    }
    assert.equal(lastV1, OrderStatusV1.CONFIRMED, protocol);
    assert.equal(watchedV1.seen.headers?.get("deprecation"), expected.deprecation, `${protocol}: WatchOrder v1`);
    assert.equal(watchedV1.seen.headers?.get("sunset"), expected.sunset, `${protocol}: WatchOrder v1`);
    const gotV1 = keepHeaders(authorization);
    // v1 reads a v2 order too: v1's view of it, without what v1 does not know.
    assert.equal((await v1.getOrder({ orderId: order.id }, gotV1.options)).order?.status, OrderStatusV1.CONFIRMED, protocol);
    assert.equal(gotV1.seen.headers?.get("deprecation"), expected.deprecation, `${protocol}: GetOrder v1`);
    const listedV1 = keepHeaders(authorization);
    const listed = await v1.listOrders({ pageSize: 100 }, listedV1.options);
    assert.ok(
      listed.orders.some((each) => each.id === v1Order!.id),
      protocol,
    );
    assert.equal(listedV1.seen.headers?.get("sunset"), expected.sunset, `${protocol}: ListOrders v1`);
  }

  // A v1 call the gate refuses (no token) is still a v1 call: its client still learns that v1 ends.
  const anonymous = await createClient(OrderServiceV1, transports["Connect JSON"]!)
    .listOrders({})
    .then(
      () => assert.fail("ListOrders without a token was served"),
      (error: unknown) => ConnectError.from(error),
    );
  assert.equal(anonymous.code, Code.Unauthenticated);
  assert.equal(anonymous.metadata.get("deprecation"), expected.deprecation, "a refused v1 call carries no Deprecation");

  // The gateway counted each v1 method once per protocol (the refused ListOrders too), and no v2 call.
  const protocols = Object.keys(transports).length;
  const atGateway = await metricsOf(gateway.metricsPort);
  assert.deepEqual(
    ["PlaceOrder", "GetOrder", "ListOrders", "WatchOrder"].map((method) => [method, deprecatedCalls(atGateway, "shop.orders.v1.OrderService", method)]),
    [
      ["PlaceOrder", protocols],
      ["GetOrder", protocols],
      ["ListOrders", protocols + 1],
      ["WatchOrder", protocols],
    ],
  );
  assert.doesNotMatch(atGateway, /meshwork_api_deprecated_calls_total\{[^}]*shop\.orders\.v2/);

  // The service itself announces it too, as gRPC response metadata, to a caller inside the mesh.
  const direct = createGrpcTransport({ baseUrl: `http://${shop.addresses.orders}` });
  const directV1 = keepHeaders(authorization);
  await createClient(OrderServiceV1, direct).listOrders({}, directV1.options);
  assert.equal(directV1.seen.headers?.get("deprecation"), expected.deprecation, "orders' own v1 answer");
  assert.equal(directV1.seen.headers?.get("sunset"), expected.sunset, "orders' own v1 answer");
  const directV2 = keepHeaders(authorization);
  await createClient(OrderServiceV2, direct).listOrders({}, directV2.options);
  assert.ok(directV2.seen.headers, "no response headers from orders");
  assert.equal(directV2.seen.headers.get("deprecation"), null, "orders' own v2 answer");
  assert.ok(shop.ordersMetricsPort, "orders runs in this process");
  const atOrders = await metricsOf(shop.ordersMetricsPort);
  // The gateway's v1 calls that reached orders (the refused one did not), and the direct one.
  assert.equal(deprecatedCalls(atOrders, "shop.orders.v1.OrderService", "ListOrders"), protocols + 1);
  assert.equal(deprecatedCalls(atOrders, "shop.orders.v1.OrderService", "PlaceOrder"), protocols);
  assert.doesNotMatch(atOrders, /meshwork_api_deprecated_calls_total\{[^}]*shop\.orders\.v2/);

  // Reflection on the orders service lists both versions.
  const reflected = createClient(ServerReflection, direct);
  for await (const answer of reflected.serverReflectionInfo(
    (async function* () {
      yield { host: "", messageRequest: { case: "listServices" as const, value: "" } };
    })(),
  )) {
    assert.equal(answer.messageResponse.case, "listServicesResponse");
    const names = answer.messageResponse.value.service.map((service) => service.name);
    assert.ok(names.includes("shop.orders.v1.OrderService") && names.includes("shop.orders.v2.OrderService"), names.join(", "));
  }
});

test("reflection at the gateway lists shop.orders.v2 beside v1, and describes v2's PlaceOrder with its shipping address", { timeout: 60_000 }, async (t) => {
  const gateway = await startGateway(
    {
      GATEWAY_PORT: "0",
      GATEWAY_IDENTITY_ADDR: CLOSED_ADDRESS,
      GATEWAY_CATALOG_ADDR: CLOSED_ADDRESS,
      GATEWAY_ORDERS_ADDR: CLOSED_ADDRESS,
      GATEWAY_PAYMENTS_ADDR: CLOSED_ADDRESS,
      GATEWAY_NOTIFICATIONS_ADDR: CLOSED_ADDRESS,
      // Off by default (a map of the API); tests and development open it.
      GATEWAY_REFLECTION: "public",
    },
    { log: createSilentLogger() },
  );
  t.onTestFinished(async () => {
    await gateway.shutdown.run("test done");
  });
  const reflection = createClient(ServerReflection, createGrpcTransport({ baseUrl: `http://127.0.0.1:${gateway.port}` }));
  const answers: ServerReflectionResponse["messageResponse"][] = [];
  for await (const answer of reflection.serverReflectionInfo(
    (async function* () {
      yield { host: "", messageRequest: { case: "listServices" as const, value: "" } };
      yield { host: "", messageRequest: { case: "fileContainingSymbol" as const, value: "shop.orders.v2.OrderService.PlaceOrder" } };
    })(),
  )) {
    answers.push(answer.messageResponse);
  }
  const [list, file] = answers;
  assert.ok(list?.case === "listServicesResponse", `listServices answered ${list?.case}`);
  const names = list.value.service.map((service) => service.name);
  assert.ok(names.includes("shop.orders.v1.OrderService") && names.includes("shop.orders.v2.OrderService"), names.join(", "));
  assert.ok(file?.case === "fileDescriptorResponse", `fileContainingSymbol answered ${file?.case}`);
  const text = file.value.fileDescriptorProto.map((bytes) => Buffer.from(bytes).toString("latin1")).join("\n");
  assert.match(text, /shop\/orders\/v2\/orders\.proto/);
  assert.match(text, /shipping_address/);
});

// ---------------------------------------------------------------------------
// Python: stubs generated from proto/ by Debian's protoc and grpc_python_plugin

const PYTHON = "/usr/bin/python3";
const PROTOC = "/usr/bin/protoc";
const GRPC_PYTHON_PLUGIN = "/usr/bin/grpc_python_plugin";
/** Where Debian's libprotobuf-dev puts google/protobuf/timestamp.proto. */
const WKT_INCLUDE = "/usr/include";

interface PythonOrders {
  order_id: string;
  status: string;
  placed_address: { recipient_name: string; city: string; postal_code: string; country_code: string };
  got_delivery: string;
  got_city: string;
  v2_metadata: Record<string, string>;
  refused: { code: string; details: string };
  v1_order_id: string;
  v1_metadata: Record<string, string>;
}

test("a Python client generated from proto/ places a v2 order with its address through the gateway's gRPC port, and reads it through v1 with Deprecation and Sunset metadata", {
  timeout: 120_000,
}, async (t) => {
  const missing = await Promise.all(
    [PYTHON, PROTOC, GRPC_PYTHON_PLUGIN].map((file) =>
      access(file, constants.X_OK).then(
        () => undefined,
        () => file,
      ),
    ),
  );
  const absent = missing.filter((file) => file !== undefined);
  const modules = absent.length === 0 ? await runProcess(PYTHON, ["-I", "-c", "import grpc, google.protobuf"], { cwd: root, timeoutMs: 30_000 }) : undefined;
  const why = absent.length > 0 ? `${absent.join(", ")} not found` : modules?.code === 0 ? undefined : modules?.stderr.trim();
  if (!needs(t, "Python gRPC toolchain (Debian's python3-grpcio, python3-protobuf, protobuf-compiler-grpc)", why)) return;

  const expected = await expectedDeprecation();
  const stubs = await tempDir(t, "python-orders-stubs");
  const generated = await runProcess(
    PROTOC,
    [
      `--proto_path=${path.join(root, "proto")}`,
      `--proto_path=${WKT_INCLUDE}`,
      `--python_out=${stubs}`,
      `--grpc_python_out=${stubs}`,
      `--plugin=protoc-gen-grpc_python=${GRPC_PYTHON_PLUGIN}`,
      "shop/common/v1/money.proto",
      "shop/orders/v1/orders.proto",
      "shop/orders/v2/orders.proto",
    ],
    { cwd: root, timeoutMs: 30_000 },
  );
  assert.equal(generated.code, 0, `protoc failed: ${generated.stderr}`);

  const started = await startShopBehindGateway(t);
  if (!started) return;
  const { shop, gateway } = started;
  const { headers } = await newShopper(shop, "python");
  const token = headers.authorization.slice("Bearer ".length);
  const client = path.join(root, "test", "fixtures", "python_orders_client.py");
  // -I: isolated (no PYTHONPATH, user site or current directory); -B: no __pycache__ written.
  const run = await runProcess(PYTHON, ["-I", "-B", client, stubs, `127.0.0.1:${gateway.port}`, token], { cwd: stubs, timeoutMs: 60_000 });
  assert.equal(run.code, 0, `the Python client failed:\nstdout: ${run.stdout}\nstderr: ${run.stderr}`);
  const python = JSON.parse(run.stdout) as PythonOrders;

  assert.equal(python.status, "ORDER_STATUS_PENDING");
  assert.deepEqual(python.placed_address, { recipient_name: "Guido", city: "Amsterdam", postal_code: "1098 XG", country_code: "NL" });
  assert.equal(python.got_delivery, "DELIVERY_OPTION_STANDARD");
  assert.equal(python.got_city, "Amsterdam");
  assert.deepEqual(python.v2_metadata, {}, "a v2 answer carried deprecation metadata");
  assert.equal(python.refused.code, "INVALID_ARGUMENT");
  assert.match(python.refused.details, /^shipping_address: is required/);
  assert.equal(python.v1_order_id, python.order_id);
  assert.deepEqual(python.v1_metadata, expected);
});
