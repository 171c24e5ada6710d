/**
 * The shop as a person uses it: Debian's Chromium (playwright-core) against
 * the real gateway serving the built web app, and the real services behind
 * it (all-in-one, embedded PostgreSQL). Each test is a new visitor.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import { isMessage } from "@bufbuild/protobuf";
import type { Interceptor } from "@connectrpc/connect";
import { WatchMeshStatusResponseSchema } from "@meshwork/contracts/shop/gateway/v1/mesh";
import { startGateway } from "@meshwork/gateway";
import { needs } from "@meshwork/testing";
import type { Page } from "playwright-core";
import { CHROMIUM, launchChromium, type RunningBrowser } from "./browser.js";
import { startWebShop, type WebShop } from "./web-shop.js";

const ARTIFACTS = path.resolve(import.meta.dirname, "../../test-artifacts");
const PASSWORD = "correct horse battery";
/** Without Chromium these tests are skipped with a notice (a failure in CI, which installs it). */
const missing = existsSync(CHROMIUM) ? undefined : `no ${CHROMIUM}: apt-get install chromium`;

describe("the web shop in Chromium", { timeout: 240_000 }, () => {
  let shop: WebShop;
  let chromium: RunningBrowser;
  /** Uncaught page errors and Content-Security-Policy refusals, from every page of every test. */
  const problems: string[] = [];

  /** A new visitor's page, watched for problems. */
  async function visit(): Promise<Page> {
    const page = await (await chromium.newVisitor()).newPage();
    page.on("pageerror", (error) => problems.push(`uncaught: ${error.message}`));
    page.on("console", (message) => {
      if (/Content Security Policy/i.test(message.text())) problems.push(`CSP: ${message.text()}`);
    });
    return page;
  }

  beforeAll(async () => {
    // The card processor takes 2 s (a live setting of payments), so the page is seen
    // between steps; the saga's step deadline is raised above that.
    const slowPayments = { MESHWORK_LIVE_PAYMENTS_PROCESSOR_LATENCY_MS: "2000", ORDERS_SAGA_STEP_TIMEOUT_MS: "8000" };
    if (missing === undefined) [shop, chromium] = await Promise.all([startWebShop(slowPayments), launchChromium()]);
  });
  afterAll(async () => {
    await chromium?.close();
    await shop?.stop();
  });

  /** A new visitor who signs up on the page and lands back in the shop, signed in. */
  async function newShopper(name: string): Promise<{ page: Page; email: string }> {
    const page = await visit();
    const email = `${name.toLowerCase()}-${randomUUID()}@example.test`;
    await page.goto(`${shop.url}/`);
    await page.getByRole("link", { name: "Create account" }).click();
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Your name").fill(name);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByRole("button", { name: "Sign out" }).waitFor();
    await page.getByRole("heading", { name: "Shop" }).waitFor();
    return { page, email };
  }

  async function addToCart(page: Page, productName: string, search: string): Promise<void> {
    await page.getByLabel("Search products").fill(search);
    await page.getByRole("button", { name: "Search" }).click();
    await page
      .getByRole("listitem", { name: productName })
      .getByRole("button", { name: /Add to cart/ })
      .click();
  }

  /** Where the order goes: API v2 requires an address, so the checkout form asks for one. */
  async function fillAddress(page: Page, delivery: RegExp = /Standard delivery/): Promise<void> {
    await page.getByLabel("Recipient").fill("Ada Lovelace");
    await page.getByLabel("Street and number").fill("12 St James's Square");
    await page.getByLabel("Postal code").fill("SW1Y 4JH");
    await page.getByLabel("City").fill("London");
    await page.getByLabel(/Country code/).fill("gb");
    await page.getByLabel(delivery).check();
  }

  async function checkout(page: Page, card: RegExp, delivery?: RegExp): Promise<void> {
    await page.getByRole("link", { name: /Cart/ }).click();
    await fillAddress(page, delivery);
    await page.getByLabel(card).check();
    await page.getByRole("button", { name: "Place order" }).click();
    await page.waitForURL(/\/orders\/[^/]+$/);
  }

  /** Another real gateway, serving the web app, in front of the same services; stopped after the test. */
  async function secondGateway(t: TestScope, env: Record<string, string>, interceptors: Interceptor[] = []): Promise<{ port: number }> {
    const at = (name: keyof WebShop["shop"]["ports"]) => `127.0.0.1:${shop.shop.ports[name]}`;
    const gateway = await startGateway(
      {
        GATEWAY_PORT: "0",
        GATEWAY_LOG_LEVEL: "error",
        GATEWAY_CATALOG_CACHE_MS: "0",
        GATEWAY_WEB_DIR: path.resolve(import.meta.dirname, "../../web/dist"),
        GATEWAY_IDENTITY_ADDR: at("identity"),
        GATEWAY_CATALOG_ADDR: at("catalog"),
        GATEWAY_ORDERS_ADDR: at("orders"),
        GATEWAY_PAYMENTS_ADDR: at("payments"),
        GATEWAY_NOTIFICATIONS_ADDR: at("notifications"),
        // The web app's mesh page, as npm start serves it.
        GATEWAY_MESH_STATUS: "public",
        ...env,
      },
      { interceptors },
    );
    t.onTestFinished(async () => {
      await gateway.shutdown.run("test done");
    });
    return gateway;
  }

  /** The idempotency key of every PlaceOrder request the page sends from now on. */
  function placeOrderKeys(page: Page): string[] {
    const keys: string[] = [];
    page.on("request", (request) => {
      if (request.url().endsWith("/shop.orders.v2.OrderService/PlaceOrder")) keys.push((JSON.parse(request.postData() ?? "{}") as { idempotencyKey: string }).idempotencyKey);
    });
    return keys;
  }

  const timelineSteps = async (page: Page): Promise<string[]> => page.getByRole("list", { name: "order timeline" }).locator(".what").allTextContents();

  test("a new shopper searches, pages, buys with the approved card, follows the saga live to Confirmed and is notified", async (t) => {
    if (!needs(t, "Chromium", missing)) return;
    const { page } = await newShopper("Ada");
    // Paging: six per page, the second page differs from the first, and Previous goes back.
    const names = () => page.getByRole("list", { name: "products" }).getByRole("heading").allTextContents();
    const first = await names();
    assert.equal(first.length, 6);
    await page.getByRole("button", { name: "Next" }).click();
    await page.getByText("Page 2").waitFor();
    await page.getByRole("list", { name: "products" }).getByRole("heading").first().waitFor();
    const second = await names();
    assert.ok(second.length > 0 && !second.some((name) => first.includes(name)), `page 2 repeats page 1: ${second.join(", ")}`);
    // Stock is shown.
    await page.getByRole("button", { name: "Previous" }).click();
    await page.getByText("Page 1").waitFor();
    await addToCart(page, "Headlamp", "headlamp");
    const card = page.getByRole("listitem", { name: "Headlamp" });
    assert.match((await card.textContent()) ?? "", /\d+ in stock/);

    await checkout(page, /approved/, /Express delivery/);
    // Live: the stock is shown reserved while the payment is still being authorized.
    await page.waitForFunction(() => {
      const { document } = globalThis as unknown as { document: { querySelector(s: string): { textContent: string } | null; querySelectorAll(s: string): ArrayLike<{ textContent: string }> } };
      const steps = Array.from(document.querySelectorAll("ol.timeline .what"), (step) => step.textContent);
      return document.querySelector('[data-status="PENDING"]') !== null && steps.join("|") === "Order placed|Stock reserved";
    });
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, "order-timeline-pending.png"), fullPage: true });
    await page.locator('[data-status="CONFIRMED"]').waitFor({ timeout: 30_000 });
    assert.deepEqual(await timelineSteps(page), ["Order placed", "Stock reserved", "Payment authorized", "Order confirmed"]);
    await page.getByText("Thank you, your order is confirmed.").waitFor();
    // The order went through API v2, with where and how it ships (the country code upper-cased by the form).
    assert.equal(await page.locator("address").textContent(), "Ada Lovelace, 12 St James's Square, SW1Y 4JH London, GB · Express delivery");

    // The notification arrives over the live stream while the page is open.
    await page.getByRole("status", { name: "latest notification" }).getByText("Order confirmed").waitFor({ timeout: 20_000 });
    await page.getByRole("link", { name: /Notifications \(\d+\)/ }).waitFor();

    await mkdir(ARTIFACTS, { recursive: true });
    const screenshot = path.join(ARTIFACTS, "order-timeline.png");
    await page.screenshot({ path: screenshot, fullPage: true });
    process.stdout.write(`order timeline screenshot: ${screenshot}\n`);

    // The notifications page lists what arrived; the orders page lists the order.
    const orderId = page.url().split("/").pop()!;
    await page.getByRole("link", { name: /^Notifications/ }).click();
    const notifications = page.getByRole("list", { name: "notifications" });
    await notifications.getByText("Order confirmed").waitFor();
    await notifications.getByText("Order received").waitFor();
    await page.getByRole("link", { name: "Orders", exact: true }).click();
    const orders = page.getByRole("list", { name: "orders" }).getByRole("listitem");
    await orders.first().waitFor();
    assert.equal(await orders.count(), 1);
    assert.match((await orders.first().textContent()) ?? "", new RegExp(`Order ${orderId.slice(0, 8)}.*confirmed`));

    // The Sales page (an asynchronous read model) shows the headlamp sold this hour and the confirmed
    // order once the projection has taken it in; the page refreshes itself and says how fresh it is.
    await page.getByRole("link", { name: "Sales", exact: true }).click();
    await page.getByRole("heading", { name: "Sales", exact: true }).waitFor();
    const headlamps = page.getByRole("table", { name: "sales per product per hour" }).locator('tr[data-product="MW-HEADLAMP"]');
    await headlamps.first().waitFor({ timeout: 30_000 });
    assert.equal(await headlamps.first().locator("td").nth(2).textContent(), "1", "one headlamp sold");
    assert.notEqual(await page.locator('[data-outcome="confirmed"]').textContent(), "0");
    assert.match((await page.getByRole("status", { name: "freshness" }).textContent()) ?? "", /They include every order event up to/);
    await page.screenshot({ path: path.join(ARTIFACTS, "sales.png"), fullPage: true });
  });

  test("the declined test card ends the order Rejected, shows the compensation and says the payment was declined", async (t) => {
    if (!needs(t, "Chromium", missing)) return;
    const { page } = await newShopper("Bob");
    await addToCart(page, "Tea tin", "tea");
    await checkout(page, /declined \(tok_declined\)/);
    await page.locator('[data-status="REJECTED"]').waitFor({ timeout: 30_000 });
    assert.deepEqual(await timelineSteps(page), ["Order placed", "Stock reserved", "Payment declined", "Stock released (compensation)", "Order rejected"]);
    const alert = page.getByRole("alert");
    assert.match((await alert.textContent()) ?? "", /Your payment was declined\..*card declined by the issuer/);
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, "order-timeline-declined.png"), fullPage: true });
  });

  test("a double-clicked Place order makes exactly one order, every request carrying the same idempotency key", async (t) => {
    if (!needs(t, "Chromium", missing)) return;
    const { page, email } = await newShopper("Cy");
    await addToCart(page, "Pencil set", "pencil");
    await page.getByRole("link", { name: /Cart/ }).click();
    const keys = placeOrderKeys(page);
    await fillAddress(page);
    await page.getByRole("button", { name: "Place order" }).dblclick();
    await page.waitForURL(/\/orders\/[^/]+$/);
    await page.locator('[data-status="CONFIRMED"]').waitFor({ timeout: 30_000 });

    assert.ok(keys.length >= 1);
    assert.equal(new Set(keys).size, 1, `different keys sent: ${keys.join(", ")}`);
    const token = await shop.signIn(email, PASSWORD);
    const { orders } = await shop.orders.listOrders({ pageSize: 10 }, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(orders.length, 1, `orders: ${orders.map((order) => order.id).join(", ")}`);
    assert.equal(page.url(), `${shop.url}/orders/${orders[0]!.id}`);
  });

  test("two clicks in the same instant, before the page can disable the button, still make one order", async (t) => {
    if (!needs(t, "Chromium", missing)) return;
    const { page, email } = await newShopper("Di");
    await addToCart(page, "Canvas tote", "tote");
    await page.getByRole("link", { name: /Cart/ }).click();
    const keys = placeOrderKeys(page);
    await fillAddress(page);
    await page.getByRole("button", { name: "Place order" }).evaluate((button: { click(): void }) => {
      button.click();
      button.click();
    });
    await page.waitForURL(/\/orders\/[^/]+$/);
    // Both clicks reached the handler before a re-render: two requests, one key.
    assert.equal(keys.length, 2, `PlaceOrder requests: ${keys.length}`);
    assert.equal(new Set(keys).size, 1);
    const token = await shop.signIn(email, PASSWORD);
    const { orders } = await shop.orders.listOrders({ pageSize: 10 }, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(orders.length, 1);
  });

  test("more than the stock ends Rejected as out of stock, with the reservation refused", async (t) => {
    if (!needs(t, "Chromium", missing)) return;
    const { page } = await newShopper("Eve");
    await addToCart(page, "Rain jacket", "rain");
    await page.getByRole("link", { name: /Cart/ }).click();
    await page.getByLabel("Quantity of Rain jacket").fill("999");
    await fillAddress(page);
    await page.getByRole("button", { name: "Place order" }).click();
    await page.locator('[data-status="REJECTED"]').waitFor({ timeout: 30_000 });
    assert.deepEqual((await timelineSteps(page)).slice(0, 2), ["Order placed", "Stock refused"]);
    assert.match((await page.getByRole("alert").textContent()) ?? "", /Some items are out of stock\./);
  });

  test("a refused token, on a call or on a live stream, is shown as an expired session with a way to sign in again, never as a code", async (t) => {
    if (!needs(t, "Chromium", missing)) return;
    const { page } = await newShopper("Fay");
    // Runs in the page; this file is typed for Node, without the DOM's names.
    const spoilToken = () =>
      page.evaluate(
        (saved) => {
          const { sessionStorage } = globalThis as unknown as { sessionStorage: { getItem(key: string): string | null; setItem(key: string, value: string): void } };
          const session = JSON.parse(saved ?? sessionStorage.getItem("meshwork.session")!) as { token: string };
          const spoiled = JSON.stringify({ ...session, token: `${session.token.slice(0, -4)}AAAA` });
          sessionStorage.setItem("meshwork.session", spoiled);
          return spoiled;
        },
        null as string | null,
      );
    const expired = async (): Promise<void> => {
      await page.getByText("Your session has expired.").first().waitFor();
      assert.ok(await page.getByRole("link", { name: "Sign in" }).first().isVisible());
      assert.equal(await page.getByRole("button", { name: "Sign out" }).count(), 0, "still shown as signed in");
      assert.doesNotMatch((await page.locator("main").textContent()) ?? "", /unauthenticated|\[\w+\]|\b16\b/i);
    };
    const spoiled = await spoilToken();
    await page.goto(`${shop.url}/orders`);
    await expired();
    // The order page only streams (WatchOrder): the refusal arrives on the stream.
    await page.evaluate((value) => (globalThis as unknown as { sessionStorage: { setItem(key: string, value: string): void } }).sessionStorage.setItem("meshwork.session", value), spoiled);
    await page.goto(`${shop.url}/orders/00000000-0000-4000-8000-000000000000`);
    await expired();
  });

  test("a rate-limited search says to wait and for how long, from the gateway's retry-after, never a code", async (t) => {
    if (!needs(t, "Chromium", missing)) return;
    // A second real gateway in front of the same services, allowing one call per second per address.
    const strict = await secondGateway(t, { MESHWORK_LIVE_GATEWAY_RATE_LIMIT_PER_ADDRESS_RPS: "1", MESHWORK_LIVE_GATEWAY_RATE_LIMIT_PER_ADDRESS_BURST: "1" });
    const page = await visit();
    await page.goto(`http://127.0.0.1:${strict.port}/`);
    const busy = page.getByRole("alert").filter({ hasText: "The shop is busy with your requests." });
    // One search a second gets through; searching faster than that is refused within a few tries.
    for (const word of ["cup", "lamp", "tea", "pan", "pot", "sock", "tote", "pencil", "jacket", "bottle"]) {
      await page.getByLabel("Search products").fill(word);
      await page.getByRole("button", { name: "Search" }).click();
      await Promise.race([busy.waitFor(), page.getByRole("list", { name: "products" }).getByRole("listitem").first().waitFor()]);
      if (await busy.isVisible()) break;
    }
    assert.match((await busy.textContent()) ?? "", /Please try again in 1 second\.|You can try again now\./);
    assert.doesNotMatch((await page.locator("main").textContent()) ?? "", /resource_exhausted|\b8\b|rate limit exceeded/i);
    // The countdown ends, Try again appears, and then the same search goes through.
    await busy.getByText("You can try again now.").waitFor({ timeout: 5000 });
    await busy.getByRole("button", { name: "Try again" }).click();
    await page.getByRole("list", { name: "products" }).getByRole("listitem").first().waitFor();
    assert.equal(await busy.count(), 0);
  });

  test("the mesh page lists every service with its health, live", async (t) => {
    if (!needs(t, "Chromium", missing)) return;
    const page = await visit();
    await page.goto(`${shop.url}/mesh`);
    const table = page.getByRole("table", { name: "mesh status" });
    await table.getByText("serving").first().waitFor();
    for (const service of ["catalog", "identity", "notifications", "orders", "payments"]) {
      assert.match((await table.locator(`tr[data-service="${service}"]`).first().textContent()) ?? "", /serving/, service);
    }
    const firstSeen = await page.getByText(/observed at/).textContent();
    await page.waitForFunction((before) => !(globalThis as unknown as { document: { body: { textContent: string } } }).document.body.textContent.includes(before!), firstSeen, { timeout: 10_000 });
  });

  test("once the gateway reports breaker state and latency, the mesh page shows them beside health", async (t) => {
    if (!needs(t, "Chromium", missing)) return;
    // The resilience work fills these fields; until then a gateway interceptor stands in
    // for it on the real WatchMeshStatus stream.
    const withBreakers: Interceptor = (next) => async (request) => {
      const response = await next(request);
      if (!response.stream) return response;
      const messages = response.message;
      return {
        ...response,
        message: (async function* () {
          for await (const message of messages) {
            if (isMessage(message, WatchMeshStatusResponseSchema)) {
              for (const service of message.services) {
                for (const instance of service.instances) {
                  instance.breakerState = service.name === "catalog" ? "open" : "closed";
                  instance.latencyP50Ms = 3.25;
                  instance.latencyP99Ms = 41.6;
                }
              }
            }
            yield message;
          }
        })(),
      };
    };
    const gateway = await secondGateway(t, {}, [withBreakers]);
    const page = await visit();
    await page.goto(`http://127.0.0.1:${gateway.port}/mesh`);
    const catalog = page.getByRole("table", { name: "mesh status" }).locator('tr[data-service="catalog"]');
    await catalog.getByText("open").waitFor();
    assert.match((await catalog.textContent()) ?? "", /serving.*open.*3\.3 ms \/ 42 ms/);
    await page.getByRole("columnheader", { name: "Breaker" }).waitFor();
    await page.getByRole("columnheader", { name: "Latency p50 / p99" }).waitFor();
  });

  test("no page threw an uncaught error or had anything refused by its Content-Security-Policy", (t) => {
    if (!needs(t, "Chromium", missing)) return;
    assert.deepEqual(problems, []);
  });
});
