/**
 * The web client's contract with the gateway (Pact, over the Connect
 * protocol's JSON encoding). The consumer half runs the web app's own
 * transport (web/src/api.ts) against Pact's mock server and writes the pact;
 * the provider half replays it against the real gateway with the real
 * services behind it, provider states creating the accounts and orders.
 * A gateway that stops filling a field the web shows fails verification,
 * even though such a change passes buf's wire checks.
 *
 * The web orders through shop.orders.v2 (API 1.1.0). The pact the web of API
 * release 1.0.0 wrote (shop.orders.v1, test/fixtures/pacts/api-1.0.0) is kept
 * as it was and verified too: a web app still deployed at that version must
 * keep working until v1's sunset.
 *
 * Only unary calls are contracted: Connect server streaming frames its
 * messages in envelopes, which Pact's HTTP matching cannot read; the
 * browser tests cover WatchOrder, WatchNotifications and WatchMeshStatus.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, test } from "vitest";
import { isMessage } from "@bufbuild/protobuf";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { CatalogService, ListProductsResponseSchema } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { NotificationService } from "@meshwork/contracts/shop/notifications/v1/notifications";
import { DeliveryOption, OrderService, OrderStatus } from "@meshwork/contracts/shop/orders/v2/orders";
import { SalesService } from "@meshwork/contracts/shop/orders/v2/sales";
import { startGateway } from "@meshwork/gateway";
import { MatchersV3, PactV3, Verifier } from "@pact-foundation/pact";
import { createShopTransport } from "../../web/src/api.js";
import { startWebShop, type WebShop } from "./web-shop.js";

const { eachLike, integer, regex, string, fromProviderState } = MatchersV3;
/** A protobuf JSON Timestamp: RFC 3339 in UTC, with fractional seconds only when they are not zero. */
const timestamp = (example: string) => regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/, example);

const CONSUMER = "meshwork-web";
const PROVIDER = "meshwork-gateway";
const PACT_DIR = path.resolve(import.meta.dirname, "../../test-artifacts/pacts");
const PACT_FILE = path.join(PACT_DIR, `${CONSUMER}-${PROVIDER}.json`);
/** The pact of the web as API release 1.0.0 shipped it (orders through v1), committed and never rewritten. */
const V1_PACT_FILE = path.resolve(import.meta.dirname, `../fixtures/pacts/api-1.0.0/${CONSUMER}-${PROVIDER}.json`);
const PASSWORD = "correct horse battery";
const EXAMPLE_TOKEN = "eyJhbGciOiJFUzI1NiJ9.example.signature";

const connectRequestHeaders = { "Content-Type": "application/json", "Connect-Protocol-Version": "1" };
const jsonResponse = { "Content-Type": "application/json" };
// Pact provider-state expressions: the provider fills them in from the state it set up.
// biome-ignore lint/suspicious/noTemplateCurlyInString: an expression for Pact, not a template
const STATE_EMAIL = "${email}";
// biome-ignore lint/suspicious/noTemplateCurlyInString: an expression for Pact, not a template
const STATE_BEARER = "Bearer ${accessToken}";
const bearer = { ...connectRequestHeaders, authorization: fromProviderState(STATE_BEARER, `Bearer ${EXAMPLE_TOKEN}`) };
const ORDER_STATUS = /^ORDER_STATUS_(PENDING|CONFIRMED|REJECTED|FAILED)$/;
const SHIPPING = { recipientName: "Ada Lovelace", line1: "12 St James's Square", line2: "Flat 2", city: "London", postalCode: "SW1Y 4JH", countryCode: "GB" };
const user = { id: string("2b1e7c1e-5d0a-4c49-9a3b-6f0e8d1f7a10"), email: string("ada@example.test"), displayName: string("Ada") };

/** The web's clients, as the app builds them, pointed at the mock server. */
function webClients(baseUrl: string, token?: string) {
  const transport = createShopTransport({ baseUrl, token: () => token });
  return {
    identity: createClient(IdentityService, transport),
    catalog: createClient(CatalogService, transport),
    orders: createClient(OrderService, transport),
    notifications: createClient(NotificationService, transport),
    sales: createClient(SalesService, transport),
  };
}

describe("the web client's contract with the gateway", { timeout: 240_000 }, () => {
  describe("consumer: what the web sends and needs back", () => {
    beforeAll(async () => {
      await mkdir(PACT_DIR, { recursive: true });
      await rm(PACT_FILE, { force: true });
    });
    const pact = new PactV3({ consumer: CONSUMER, provider: PROVIDER, dir: PACT_DIR, logLevel: "warn" });

    test("searching the catalog returns products with a price and the stock available", async () => {
      pact
        .given("the demo catalog is on sale")
        .uponReceiving("a catalog search from the shop page")
        .withRequest({ method: "POST", path: "/shop.catalog.v1.CatalogService/ListProducts", headers: connectRequestHeaders, body: { pageSize: 6, query: "lamp" } })
        .willRespondWith({
          status: 200,
          headers: jsonResponse,
          body: {
            products: eachLike({
              id: string("MW-DESK-LAMP"),
              name: string("Desk lamp"),
              description: string("Dimmable LED desk lamp with a warm light setting."),
              price: { currencyCode: regex(/^[A-Z]{3}$/, "EUR"), amountMinor: regex(/^\d+$/, "5900") },
              stockAvailable: integer(35),
              imageUrl: string("/img/desk-lamp.svg"),
            }),
          },
        });
      await pact.executeTest(async (server) => {
        const { products } = await webClients(server.url).catalog.listProducts({ pageSize: 6, pageToken: "", query: "lamp", category: "" });
        assert.equal(products[0]!.stockAvailable, 35);
        assert.equal(products[0]!.price?.amountMinor, 5900n);
      });
    });

    test("signing up returns the new account", async () => {
      pact
        .given("no account uses the email")
        .uponReceiving("a sign-up")
        .withRequest({
          method: "POST",
          path: "/shop.identity.v1.IdentityService/SignUp",
          headers: connectRequestHeaders,
          body: { email: fromProviderState(STATE_EMAIL, "new@example.test"), password: PASSWORD, displayName: "Ada" },
        })
        .willRespondWith({ status: 200, headers: jsonResponse, body: { user } });
      await pact.executeTest(async (server) => {
        const response = await webClients(server.url).identity.signUp({ email: "new@example.test", password: PASSWORD, displayName: "Ada" });
        assert.equal(response.user?.displayName, "Ada");
      });
    });

    test("signing in returns a token, when it expires, and who signed in", async () => {
      pact
        .given("a shopper account exists")
        .uponReceiving("a sign-in with the right password")
        .withRequest({
          method: "POST",
          path: "/shop.identity.v1.IdentityService/SignIn",
          headers: connectRequestHeaders,
          body: { email: fromProviderState(STATE_EMAIL, "ada@example.test"), password: PASSWORD },
        })
        .willRespondWith({ status: 200, headers: jsonResponse, body: { accessToken: string(EXAMPLE_TOKEN), expireTime: timestamp("2026-11-28T02:15:00.000Z"), user } });
      await pact.executeTest(async (server) => {
        const response = await webClients(server.url).identity.signIn({ email: "ada@example.test", password: PASSWORD });
        assert.equal(response.accessToken, EXAMPLE_TOKEN);
        assert.ok(response.expireTime);
      });
    });

    test("a wrong password is refused as unauthenticated, which the sign-in form explains", async () => {
      pact
        .given("a shopper account exists")
        .uponReceiving("a sign-in with a wrong password")
        .withRequest({
          method: "POST",
          path: "/shop.identity.v1.IdentityService/SignIn",
          headers: connectRequestHeaders,
          body: { email: fromProviderState(STATE_EMAIL, "ada@example.test"), password: "not the password" },
        })
        .willRespondWith({ status: 401, headers: jsonResponse, body: { code: "unauthenticated", message: string("wrong email or password") } });
      await pact.executeTest(async (server) => {
        await assert.rejects(webClients(server.url).identity.signIn({ email: "ada@example.test", password: "not the password" }), /unauthenticated/);
      });
    });

    test("placing an order with an idempotency key and a shipping address returns the order, where it stands and where it goes", async () => {
      pact
        .given("a signed-in shopper")
        .uponReceiving("a checkout with the approved test card")
        .withRequest({
          method: "POST",
          path: "/shop.orders.v2.OrderService/PlaceOrder",
          headers: bearer,
          body: {
            idempotencyKey: "web-0d6c1f0e-pact-checkout",
            items: [{ productId: "MW-TEA-TIN", quantity: 2 }],
            paymentMethod: { cardToken: "tok_visa" },
            shippingAddress: SHIPPING,
            deliveryOption: "DELIVERY_OPTION_EXPRESS",
          },
        })
        .willRespondWith({
          status: 200,
          headers: jsonResponse,
          body: {
            order: {
              id: string("5f0c2a8e-0d6c-4a55-b1f2-3c4d5e6f7a8b"),
              status: regex(ORDER_STATUS, "ORDER_STATUS_PENDING"),
              lines: eachLike({ productId: string("MW-TEA-TIN"), quantity: integer(2) }),
              // The order page shows where and how it ships.
              shippingAddress: {
                recipientName: string(SHIPPING.recipientName),
                line1: string(SHIPPING.line1),
                line2: string(SHIPPING.line2),
                city: string(SHIPPING.city),
                postalCode: string(SHIPPING.postalCode),
                countryCode: regex(/^[A-Z]{2}$/, SHIPPING.countryCode),
              },
              deliveryOption: regex(/^DELIVERY_OPTION_(STANDARD|EXPRESS)$/, "DELIVERY_OPTION_EXPRESS"),
            },
          },
        });
      await pact.executeTest(async (server) => {
        const { order } = await webClients(server.url, EXAMPLE_TOKEN).orders.placeOrder({
          idempotencyKey: "web-0d6c1f0e-pact-checkout",
          items: [{ productId: "MW-TEA-TIN", quantity: 2 }],
          paymentMethod: { cardToken: "tok_visa" },
          shippingAddress: SHIPPING,
          deliveryOption: DeliveryOption.EXPRESS,
        });
        assert.equal(order?.status, OrderStatus.PENDING);
        assert.equal(order?.shippingAddress?.city, SHIPPING.city);
        assert.equal(order?.deliveryOption, DeliveryOption.EXPRESS);
      });
    });

    test("the order list shows each order's status and when it was placed", async () => {
      pact
        .given("a signed-in shopper with an order")
        .uponReceiving("the orders page")
        .withRequest({ method: "POST", path: "/shop.orders.v2.OrderService/ListOrders", headers: bearer, body: { pageSize: 10 } })
        .willRespondWith({
          status: 200,
          headers: jsonResponse,
          body: { orders: eachLike({ id: string("5f0c2a8e-0d6c-4a55-b1f2-3c4d5e6f7a8b"), status: regex(ORDER_STATUS, "ORDER_STATUS_CONFIRMED"), createTime: timestamp("2026-11-28T02:00:00.000Z") }) },
        });
      await pact.executeTest(async (server) => {
        const { orders } = await webClients(server.url, EXAMPLE_TOKEN).orders.listOrders({ pageSize: 10, pageToken: "" });
        assert.equal(orders[0]?.status, OrderStatus.CONFIRMED);
      });
    });

    test("the notifications page lists subjects and bodies", async () => {
      pact
        .given("a signed-in shopper with a notification")
        .uponReceiving("the notifications page")
        .withRequest({ method: "POST", path: "/shop.notifications.v1.NotificationService/ListNotifications", headers: bearer, body: { pageSize: 50 } })
        .willRespondWith({
          status: 200,
          headers: jsonResponse,
          body: {
            notifications: eachLike({
              id: string("n-1"),
              subject: string("Order confirmed"),
              body: string("Your order is confirmed."),
              orderId: string("5f0c2a8e-0d6c-4a55-b1f2-3c4d5e6f7a8b"),
              createTime: timestamp("2026-11-28T02:00:01.000Z"),
            }),
          },
        });
      await pact.executeTest(async (server) => {
        const { notifications } = await webClients(server.url, EXAMPLE_TOKEN).notifications.listNotifications({ pageSize: 50, pageToken: "" });
        assert.equal(notifications[0]?.subject, "Order confirmed");
      });
    });

    test("the sales page shows units and revenue per product per hour, the confirmed orders, and how fresh the figures are", async () => {
      // int64 fields are JSON strings; zero values (no rejected order, nothing pending) are left out by proto3 JSON.
      const count = (example: string) => regex(/^\d+$/, example);
      pact
        .given("a signed-in shopper after a confirmed order has reached the sales view")
        .uponReceiving("the sales page")
        .withRequest({ method: "POST", path: "/shop.orders.v2.SalesService/GetSalesReport", headers: bearer, body: {} })
        .willRespondWith({
          status: 200,
          headers: jsonResponse,
          body: {
            startTime: timestamp("2026-11-27T03:00:00Z"),
            endTime: timestamp("2026-11-28T03:00:00Z"),
            products: eachLike({ hour: timestamp("2026-11-28T02:00:00Z"), productId: string("MW-PENCIL-SET"), units: count("1"), revenue: { currencyCode: string("EUR"), amountMinor: count("450") } }),
            outcomes: { confirmed: count("1") },
            freshness: { lastEventTime: timestamp("2026-11-28T02:00:01.000Z"), updateTime: timestamp("2026-11-28T02:00:01.500Z"), readTime: timestamp("2026-11-28T02:00:02.000Z") },
          },
        });
      await pact.executeTest(async (server) => {
        const report = await webClients(server.url, EXAMPLE_TOKEN).sales.getSalesReport({});
        assert.equal(report.products[0]?.units, 1n);
        assert.equal(report.outcomes?.confirmed, 1n);
        assert.ok(report.freshness?.lastEventTime);
      });
    });

    test("the pact file holds every interaction the web needs", async () => {
      const written = JSON.parse(await readFile(PACT_FILE, "utf8")) as { interactions: { description: string }[] };
      assert.equal(written.interactions.length, 8);
    });
  });

  describe("provider: the real gateway honours the pact", () => {
    let shop: WebShop;
    beforeAll(async () => {
      shop = await startWebShop();
    });
    afterAll(async () => shop?.stop());

    /** Provider states: each makes what its interaction needs, with a fresh account so runs never collide. */
    const stateHandlers = () => {
      const account = async (): Promise<{ email: string; accessToken: string }> => {
        const email = `pact-${randomUUID()}@example.test`;
        await shop.identity.signUp({ email, password: PASSWORD, displayName: "Pact shopper" });
        return { email, accessToken: await shop.signIn(email, PASSWORD) };
      };
      const withOrder = async (): Promise<{ email: string; accessToken: string }> => {
        const created = await account();
        const headers = { authorization: `Bearer ${created.accessToken}` };
        await shop.orders.placeOrder({ idempotencyKey: `pact-${randomUUID()}`, items: [{ productId: "MW-PENCIL-SET", quantity: 1 }], paymentMethod: { cardToken: "tok_visa" } }, { headers });
        return created;
      };
      return {
        "the demo catalog is on sale": async () => undefined,
        "no account uses the email": async () => ({ email: `pact-${randomUUID()}@example.test` }),
        "a shopper account exists": async () => ({ email: (await account()).email }),
        "a signed-in shopper": async () => ({ accessToken: (await account()).accessToken }),
        "a signed-in shopper with an order": async () => ({ accessToken: (await withOrder()).accessToken }),
        "a signed-in shopper after a confirmed order has reached the sales view": async () => {
          const created = await withOrder();
          const headers = { authorization: `Bearer ${created.accessToken}` };
          // The view is asynchronous: ask until the projection has taken the confirmed order in.
          const sales = createClient(SalesService, shop.transport);
          const deadline = Date.now() + 30_000;
          for (;;) {
            const { outcomes } = await sales.getSalesReport({}, { headers });
            if ((outcomes?.confirmed ?? 0n) > 0n) break;
            if (Date.now() > deadline) throw new Error("the confirmed order never reached the sales view");
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
          return { accessToken: created.accessToken };
        },
        "a signed-in shopper with a notification": async () => {
          const created = await account();
          const headers = { authorization: `Bearer ${created.accessToken}` };
          const notifications = createClient(NotificationService, shop.transport);
          const watching = new AbortController();
          const first = (async () => {
            for await (const _ of notifications.watchNotifications({}, { headers, signal: watching.signal, timeoutMs: 30_000 })) return;
          })();
          await shop.orders.placeOrder({ idempotencyKey: `pact-${randomUUID()}`, items: [{ productId: "MW-PENCIL-SET", quantity: 1 }], paymentMethod: { cardToken: "tok_visa" } }, { headers });
          await first;
          watching.abort();
          return { accessToken: created.accessToken };
        },
      };
    };

    const verify = (baseUrl: string, pact = PACT_FILE) =>
      new Verifier({ provider: PROVIDER, providerBaseUrl: baseUrl, pactUrls: [pact], stateHandlers: stateHandlers(), logLevel: "error" }).verifyProvider();

    test("every interaction of the pact is verified against the real gateway and services", async () => {
      await verify(shop.url);
    });

    test("the pact of API release 1.0.0 (the web ordering through shop.orders.v1) is still verified, until v1's sunset", async () => {
      const kept = JSON.parse(await readFile(V1_PACT_FILE, "utf8")) as { interactions: { request: { path: string } }[] };
      // It is the v1 pact: a copy refreshed from the current consumer would prove nothing about v1.
      assert.ok(
        kept.interactions.some((interaction) => interaction.request.path === "/shop.orders.v1.OrderService/PlaceOrder"),
        "the kept pact does not place orders through v1",
      );
      await verify(shop.url, V1_PACT_FILE);
    });

    test("a gateway that stops filling stockAvailable fails verification, though the wire format is unchanged", async () => {
      // The real gateway, with one interceptor that drops the field from
      // catalog answers: what a careless mapping change in the gateway would do.
      const dropStock: Interceptor = (next) => async (request) => {
        const response = await next(request);
        if (!response.stream && isMessage(response.message, ListProductsResponseSchema)) {
          for (const product of response.message.products) product.stockAvailable = 0;
        }
        return response;
      };
      const at = (name: keyof WebShop["shop"]["ports"]) => `127.0.0.1:${shop.shop.ports[name]}`;
      const broken = await startGateway(
        {
          GATEWAY_PORT: "0",
          GATEWAY_LOG_LEVEL: "error",
          GATEWAY_CATALOG_CACHE_MS: "0",
          GATEWAY_IDENTITY_ADDR: at("identity"),
          GATEWAY_CATALOG_ADDR: at("catalog"),
          GATEWAY_ORDERS_ADDR: at("orders"),
          GATEWAY_PAYMENTS_ADDR: at("payments"),
          GATEWAY_NOTIFICATIONS_ADDR: at("notifications"),
        },
        { interceptors: [dropStock] },
      );
      try {
        await assert.rejects(verify(`http://127.0.0.1:${broken.port}`), (error: Error) => {
          // The verifier's error is its JSON report: exactly the catalog interaction fails, on that field.
          const report = JSON.parse(error.message) as { errors: { interaction: string; mismatch: { mismatches: { path: string; mismatch: string }[] } }[] };
          assert.deepEqual(
            report.errors.map((failure) => failure.interaction.replace(/^.* - /, "")),
            ["a catalog search from the shop page"],
          );
          assert.ok(
            report.errors[0]!.mismatch.mismatches.every((mismatch) => /stockAvailable/.test(`${mismatch.path} ${mismatch.mismatch}`)),
            JSON.stringify(report.errors[0]!.mismatch),
          );
          return true;
        });
      } finally {
        await broken.shutdown.run("test done");
      }
    });
  });
});
