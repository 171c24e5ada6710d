/**
 * Chaos: payments slowed past the saga's deadline, then failing outright,
 * then healed — on the multi-process mesh (PostgreSQL, RabbitMQ), driven
 * through live config files the running services re-read.
 *
 * Invariants: orders' breaker towards payments opens; every order placed in
 * the outage ends REJECTED or FAILED with its compensation done (no payment
 * left authorized, all stock back); catalog reads through the gateway keep
 * their latency; the calls reaching payments stay within the retry budget;
 * after recovery the breaker closes and orders are confirmed again.
 *
 * Serial: it measures latency, so it runs alone.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "vitest";
import { OrderStatus } from "@meshwork/contracts/shop/orders/v1/orders";
import { catalogReadLoad, ms, percentile, queryServiceDb, report, shopper } from "./chaos-kit.js";
import { meshBasePort, startTestMesh } from "../e2e/test-mesh.js";

const PRODUCT = "MW-PENCIL-SET";
const BREAKER_THRESHOLD = 5;
const HALF_OPEN_AFTER_MS = 1500;
const SAGA_MAX_ATTEMPTS = 3;
const BUDGET_TOKENS = 10;
const OUTAGE_ORDERS = 10;

test("payments slowed, then failing, then healed: breaker opens and closes, orders compensated, catalog reads unharmed, retries within budget", { timeout: 240_000 }, async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "meshwork-chaos-"));
  t.onTestFinished(() => rm(dir, { recursive: true, force: true }));
  const liveFile = path.join(dir, "live.json");
  const live: Record<string, unknown> = {
    "orders/resilience/payments": {
      breaker: { consecutiveFailures: BREAKER_THRESHOLD, halfOpenAfterMs: HALF_OPEN_AFTER_MS },
      budget: { maxTokens: BUDGET_TOKENS, tokenRatio: 0.1 },
    },
    "gateway/rate-limit-per-address-rps": 100_000,
    "gateway/rate-limit-per-address-burst": 100_000,
    "gateway/rate-limit-per-user-rps": 100_000,
    "gateway/rate-limit-per-user-burst": 100_000,
  };
  await writeFile(liveFile, JSON.stringify(live));

  const mesh = await startTestMesh(t, {
    basePort: meshBasePort(),
    env: {
      IDENTITY_SCRYPT_N: "1024",
      // Reads go to catalog every time, so their latency is catalog's, not the cache's.
      GATEWAY_CATALOG_CACHE_MS: "0",
      ORDERS_SAGA_STEP_TIMEOUT_MS: "400",
      ORDERS_SAGA_MAX_ATTEMPTS: String(SAGA_MAX_ATTEMPTS),
      ORDERS_SAGA_BACKOFF_BASE_MS: "50",
      ORDERS_SAGA_BACKOFF_MAX_MS: "200",
      ORDERS_SAGA_POLL_MS: "100",
      // Every call payments serves is logged ("call finished"): the count the retry storm check needs.
      PAYMENTS_LOG_LEVEL: "debug",
      PAYMENTS_LIVE_CONFIG_FILE: liveFile,
      ORDERS_LIVE_CONFIG_FILE: liveFile,
      GATEWAY_LIVE_CONFIG_FILE: liveFile,
    },
  });
  if (!mesh) return;
  try {
    const shop = await shopper(mesh.gatewayPort);
    const setLive = async (changes: Record<string, unknown>, service: string, key: string): Promise<void> => {
      const from = mesh.lines.length;
      Object.assign(live, changes);
      await writeFile(liveFile, JSON.stringify(live));
      await mesh.waitForLine(
        (line) => mesh.lines.indexOf(line) >= from && line.startsWith(service) && line.includes('"live config value changed"') && line.includes(key),
        10_000,
        `${service} to take ${key}`,
      );
    };
    const authorizeCallsSince = (from: number): number =>
      mesh.lines.slice(from).filter((line) => line.startsWith("payments") && line.includes('"call finished"') && line.includes("AuthorizePayment")).length;
    const stock = async (): Promise<number> => (await queryServiceDb<{ stock: number }>("catalog", mesh.suffix, "select stock from products where id = $1", [PRODUCT]))[0]!.stock;

    // Healthy: a baseline of catalog read latency, and one order confirmed.
    const baseline = await catalogReadLoad(shop.catalog, PRODUCT, 4, AbortSignal.timeout(3000));
    const healthy = await shop.placeOrder(PRODUCT);
    assert.equal((await shop.followToFinal(healthy)).status, OrderStatus.CONFIRMED);
    const stockBefore = await stock();

    // Outage, part 1: payments answers after 3 s, the saga waits 400 ms per call.
    const loadStop = new AbortController();
    const load = catalogReadLoad(shop.catalog, PRODUCT, 4, loadStop.signal);
    await setLive({ "payments/processor-latency-ms": 3000 }, "payments", "payments/processor-latency-ms");
    const slowFrom = mesh.lines.length;
    const slowStarted = performance.now();
    const slowOrders = await Promise.all(Array.from({ length: OUTAGE_ORDERS / 2 }, () => shop.placeOrder(PRODUCT)));
    const opened = await mesh.waitForLine(
      (line) => line.startsWith("orders") && line.includes('"downstream":"payments"') && line.includes("circuit breaker open"),
      30_000,
      "orders' payments breaker to open",
    );
    const openedAfterMs = performance.now() - slowStarted;
    const callsBeforeOpen =
      authorizeCallsSince(slowFrom) -
      mesh.lines.slice(mesh.lines.indexOf(opened)).filter((line) => line.startsWith("payments") && line.includes('"call finished"') && line.includes("AuthorizePayment")).length;

    // Outage, part 2: payments answers at once, but every authorization fails (UNAVAILABLE).
    await setLive({ "payments/processor-latency-ms": 0, "payments/transient-failure-rate": 1 }, "payments", "payments/transient-failure-rate");
    const failingFrom = mesh.lines.length;
    const failingOrders = await Promise.all(Array.from({ length: OUTAGE_ORDERS / 2 }, () => shop.placeOrder(PRODUCT)));
    const outcomes = await Promise.all([...slowOrders, ...failingOrders].map((id) => shop.followToFinal(id)));
    const failingCalls = authorizeCallsSince(failingFrom);
    loadStop.abort();
    const during = await load;

    for (const [index, outcome] of outcomes.entries()) {
      assert.ok([OrderStatus.REJECTED, OrderStatus.FAILED].includes(outcome.status), `outage order ${index} ended ${OrderStatus[outcome.status]} (${outcome.reason})`);
    }
    const outageIds = [...slowOrders, ...failingOrders];
    const authorized = await queryServiceDb<{ order_id: string; status: string }>(
      "payments",
      mesh.suffix,
      "select order_id, status from payments where order_id = any($1) and status not in ('voided', 'declined')",
      [outageIds],
    );
    assert.deepEqual(authorized, [], "no outage order keeps a payment");
    assert.equal(await stock(), stockBefore, "every outage order's stock went back");

    // Catalog reads never touch payments: the bulkheads keep them apart.
    const baseP99 = percentile(baseline.latencies, 0.99);
    const duringP99 = percentile(during.latencies, 0.99);
    assert.equal(during.errors, 0, `catalog reads failed during the payments outage: ${JSON.stringify(during.errorCodes)}`);
    assert.ok(duringP99 < Math.max(5 * baseP99, baseP99 + 250), `catalog p99 went from ${ms(baseP99)} to ${ms(duringP99)}`);

    // Healed: after the cool-down the next call is the trial; it succeeds and the breaker closes.
    await setLive({ "payments/transient-failure-rate": 0 }, "payments", "payments/transient-failure-rate");
    const breakerLines = (): string[] => mesh.lines.filter((line) => line.startsWith("orders") && line.includes('"downstream":"payments"') && line.includes("circuit breaker"));
    // Payments' breaker only: orders' breakers in front of catalog and identity log the same words.
    const lastOpen = breakerLines().findLast((line) => line.includes("circuit breaker open"))!;
    const lastOpenAt = Date.parse((JSON.parse(lastOpen.slice(lastOpen.indexOf("{"))) as { time: string }).time);
    const coolDownLeft = lastOpenAt + HALF_OPEN_AFTER_MS - Date.now();
    if (coolDownLeft > 0) await new Promise((resolve) => setTimeout(resolve, coolDownLeft + 50));
    const recovered = await shop.placeOrder(PRODUCT);
    assert.equal((await shop.followToFinal(recovered)).status, OrderStatus.CONFIRMED);
    const lastOpenIndex = mesh.lines.lastIndexOf(lastOpen);
    await mesh
      .waitForLine(
        (line) => mesh.lines.indexOf(line) > lastOpenIndex && line.startsWith("orders") && line.includes('"downstream":"payments"') && line.includes("circuit breaker closed"),
        10_000,
        "the breaker to close",
      )
      .catch((error: unknown) => {
        // Say what the breaker did instead, so a failure on a loaded machine can be read from the CI log.
        throw new Error(`${(error as Error).message}; payments' breaker since the outage:\n${breakerLines().join("\n")}`);
      });
    const transitions = breakerLines().map((line) => /circuit breaker ([a-z-]+)/.exec(line)![1]);
    assert.equal(transitions.at(-1), "closed");

    // The retry storm check, with the breaker turned off: every saga call to payments may be retried twice, but
    // the budget keeps the total near one attempt per call.
    await setLive(
      {
        "orders/resilience/payments": {
          breaker: { enabled: false },
          budget: { maxTokens: BUDGET_TOKENS, tokenRatio: 0.1 },
        },
      },
      "orders",
      "orders/resilience/payments",
    );
    await setLive({ "payments/transient-failure-rate": 1 }, "payments", "payments/transient-failure-rate");
    const stormFrom = mesh.lines.length;
    const stormOrders = await Promise.all(Array.from({ length: OUTAGE_ORDERS / 2 }, () => shop.placeOrder(PRODUCT)));
    const stormOutcomes = await Promise.all(stormOrders.map((id) => shop.followToFinal(id)));
    assert.ok(
      stormOutcomes.every((outcome) => outcome.status === OrderStatus.FAILED),
      stormOutcomes.map((outcome) => outcome.reason).join("; "),
    );
    const stormCalls = authorizeCallsSince(stormFrom);
    const sagaCalls = (OUTAGE_ORDERS / 2) * SAGA_MAX_ATTEMPTS;
    const budgetBound = sagaCalls + BUDGET_TOKENS / 2 + 1;
    assert.ok(stormCalls >= sagaCalls, `every saga attempt reached payments (${stormCalls} of ${sagaCalls})`);
    assert.ok(stormCalls <= budgetBound, `payments saw ${stormCalls} authorizations; the budget allows ${budgetBound}`);

    report("payments outage", {
      "catalog reads before (4 loops)": `${baseline.latencies.length} calls, p50 ${ms(percentile(baseline.latencies, 0.5))}, p99 ${ms(baseP99)}`,
      "catalog reads during outage": `${during.latencies.length} calls, p50 ${ms(percentile(during.latencies, 0.5))}, p99 ${ms(duringP99)}, errors ${during.errors}`,
      "breaker opened after": `${ms(openedAfterMs)}; ${callsBeforeOpen} authorizations had finished at payments by then (threshold ${BREAKER_THRESHOLD} in a row, ${OUTAGE_ORDERS / 2} orders at once)`,
      "breaker transitions": transitions.join(" -> "),
      "outage orders": outcomes.map((outcome) => OrderStatus[outcome.status]).join(" "),
      "authorizations while failing": `${failingCalls} reached payments (the open breaker refused the rest; saga calls at most ${(OUTAGE_ORDERS / 2) * SAGA_MAX_ATTEMPTS})`,
      "retry storm, breaker off": `${stormCalls} authorizations for ${sagaCalls} saga calls (budget bound ${budgetBound}; 3 attempts each without a budget: ${sagaCalls * 3})`,
    });
  } catch (error) {
    process.stderr.write(`mesh output (last 60 lines):\n${mesh.tail(60)}\n`);
    throw error;
  }
});
