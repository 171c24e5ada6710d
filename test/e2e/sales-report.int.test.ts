/**
 * The sales view (issue 15) end to end: the real shop (PostgreSQL, RabbitMQ)
 * behind the real gateway. An order placed and confirmed through the gateway
 * shows up in GetSalesReport once the orders service's background projection
 * has taken it in (awaited by asking again, never by sleeping); bad ranges are
 * INVALID_ARGUMENT naming the field, and a caller without a token is refused.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "vitest";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { DeliveryOption, OrderService, OrderStatus } from "@meshwork/contracts/shop/orders/v2/orders";
import { SalesService, type GetSalesReportResponse } from "@meshwork/contracts/shop/orders/v2/sales";
import { newShopper, startShopBehindGateway } from "./shop-harness.js";

const ADDRESS = { recipientName: "Ada Lovelace", line1: "12 St James's Square", line2: "", city: "London", postalCode: "SW1Y 4JH", countryCode: "GB" };

test("an order confirmed through the gateway appears in the sales report, with its freshness, on Connect, gRPC-web and gRPC; bad ranges and anonymous callers are refused", {
  timeout: 240_000,
}, async (t) => {
  const started = await startShopBehindGateway(t, { ordersEnv: { ORDERS_SALES_PROJECTION_POLL_MS: "50" } });
  if (!started) return;
  const { shop, gateway } = started;
  const baseUrl = `http://127.0.0.1:${gateway.port}`;
  const transports: Record<string, Transport> = {
    "Connect JSON": createConnectTransport({ baseUrl, httpVersion: "1.1" }),
    "gRPC-web": createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
    gRPC: createGrpcTransport({ baseUrl }),
  };
  const { headers: authorization } = await newShopper(shop, "sales");
  const orders = createClient(OrderService, transports["Connect JSON"]!);

  const { order } = await orders.placeOrder(
    { idempotencyKey: randomUUID(), items: [{ productId: "MW-HEADLAMP", quantity: 3 }], paymentMethod: { cardToken: "tok_visa" }, shippingAddress: ADDRESS, deliveryOption: DeliveryOption.STANDARD },
    { headers: authorization },
  );
  let status = order?.status;
  for await (const update of orders.watchOrder({ orderId: order!.id }, { headers: authorization, signal: AbortSignal.timeout(30_000) })) {
    status = update.order?.status;
    if (status !== OrderStatus.PENDING) break;
  }
  assert.equal(status, OrderStatus.CONFIRMED);

  for (const [protocol, transport] of Object.entries(transports)) {
    const sales = createClient(SalesService, transport);
    // Eventually consistent: ask until the view has the order (the projection polls every 50 ms here).
    let report: GetSalesReportResponse | undefined;
    const deadline = Date.now() + 20_000;
    for (;;) {
      report = await sales.getSalesReport({}, { headers: authorization });
      if (report.outcomes?.confirmed === 1n || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    assert.equal(report.outcomes?.confirmed, 1n, protocol);
    const headlamps = report.products.filter((row) => row.productId === "MW-HEADLAMP");
    assert.equal(headlamps.length, 1, protocol);
    assert.equal(headlamps[0]?.units, 3n, protocol);
    assert.ok((headlamps[0]?.revenue?.amountMinor ?? 0n) > 0n, protocol);
    assert.ok(report.freshness?.lastEventTime && report.freshness.readTime, `${protocol}: the report says how fresh it is`);
    assert.equal(report.endTime!.seconds - report.startTime!.seconds, 24n * 3600n, `${protocol}: the last 24 hours by default`);

    const inverted = await sales
      .getSalesReport({ startTime: timestampFromDate(new Date("2026-03-02T00:00:00Z")), endTime: timestampFromDate(new Date("2026-03-01T00:00:00Z")) }, { headers: authorization })
      .then(
        () => assert.fail(`${protocol}: an inverted range was served`),
        (error: unknown) => ConnectError.from(error),
      );
    assert.equal(inverted.code, Code.InvalidArgument, protocol);
    assert.match(inverted.rawMessage, /^start_time: must be before end_time/, protocol);

    const anonymous = await sales.getSalesReport({}).then(
      () => assert.fail(`${protocol}: a report was served without a token`),
      (error: unknown) => ConnectError.from(error),
    );
    assert.equal(anonymous.code, Code.Unauthenticated, protocol);
  }
});
