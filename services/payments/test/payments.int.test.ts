/**
 * The payments service as it runs: the real server on port 0, over real
 * gRPC, on a fresh PostgreSQL database (skipped without one, failing in CI),
 * with the simulated processor driven by live configuration.
 */
import assert from "node:assert/strict";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import { Health, HealthCheckResponse_ServingStatus } from "@meshwork/contracts/health/v1/health";
import { PaymentService, PaymentStatus } from "@meshwork/contracts/shop/payments/v1/payments";
import { Code, ConfigError, createClient, createSilentLogger, isRpcError, openDatabase, type Knex } from "@meshwork/platform";
import { createConsulHttpApi, createLogCapture, createTestDatabase, startServiceProcess, type LogEntry } from "@meshwork/testing";
import { migrations } from "../migrations/index.js";
import { LIVE_KEYS } from "../src/live-settings.js";
import { startPayments } from "../src/main.js";

const mainFile = path.resolve(import.meta.dirname, "../src/main.ts");
const TEST_TIMEOUT = { timeout: 90_000 };

type Env = Record<string, string>;

/** One running instance, its client, and the log lines it wrote. */
async function startInstance(t: TestScope, env: Env) {
  const logs = createLogCapture({ service: "payments", level: "info" });
  const running = await startPayments({ PAYMENTS_PORT: "0", ...env }, { log: logs.log });
  t.onTestFinished(async () => {
    await running.shutdown.run("test finished");
  });
  const { client, close } = createClient(PaymentService, { target: `127.0.0.1:${running.port}` });
  t.onTestFinished(close);
  /** How many times this instance asked the processor about the order. */
  const processorCalls = (orderId: string): number => logs.entries.filter((entry) => entry.msg === "processor answered" && entry.orderId === orderId).length;
  return { running, payments: client, logs, processorCalls };
}

async function startOnPostgres(t: TestScope, env: Env = {}) {
  const url = await createTestDatabase(t, "payments_int");
  if (url === undefined) return undefined;
  const instance = await startInstance(t, { PAYMENTS_DATABASE_URL: url, ...env });
  // A separate connection to look at the rows the service wrote.
  const database = await openDatabase({ url, migrations, migrationsTable: "payments_migrations", log: createSilentLogger() });
  t.onTestFinished(() => database.close());
  return { ...instance, url, db: database.knex };
}

const rowCount = async (db: Knex): Promise<number> => (await db("payments").count({ n: "*" }))[0]!.n as number;

const authorize = (orderId: string, overrides: { amountMinor?: bigint; cardToken?: string } = {}) => ({
  orderId,
  amount: { currencyCode: "EUR", amountMinor: overrides.amountMinor ?? 4500n },
  cardToken: overrides.cardToken ?? "tok_visa_4242",
});

const rejection = (work: Promise<unknown>): Promise<unknown> =>
  work.then(
    () => assert.fail("expected an error"),
    (caught: unknown) => caught,
  );

const isChangeOf = (key: string) => (entry: LogEntry) => entry.msg === "live config value changed" && entry.key === key;

describe("payments server on PostgreSQL", () => {
  test("serves: health SERVING; an ordinary card is AUTHORIZED, the test tokens DECLINED with their reasons, and no token is stored", async (t) => {
    const service = await startOnPostgres(t);
    if (!service) return;
    const { client: health, close } = createClient(Health, { target: `127.0.0.1:${service.running.port}` });
    t.onTestFinished(close);
    assert.equal((await health.check({ service: "shop.payments.v1.PaymentService" })).status, HealthCheckResponse_ServingStatus.SERVING);

    const approved = await service.payments.authorizePayment(authorize("o-approve"));
    assert.equal(approved.payment?.status, PaymentStatus.AUTHORIZED);
    assert.deepEqual(approved.payment?.amount, { $typeName: "shop.common.v1.Money", currencyCode: "EUR", amountMinor: 4500n });
    const declined = await service.payments.authorizePayment(authorize("o-decline", { cardToken: "tok_declined" }));
    assert.equal(declined.payment?.status, PaymentStatus.DECLINED);
    assert.equal(declined.payment?.declineReason, "card declined by the issuer");
    const poor = await service.payments.authorizePayment(authorize("o-poor", { cardToken: "tok_insufficient_funds" }));
    assert.equal(poor.payment?.declineReason, "insufficient funds");

    const rows = await service.db("payments").orderBy("order_id").select("*");
    assert.deepEqual(
      rows.map((row: { order_id: string; status: string }) => [row.order_id, row.status]),
      [
        ["o-approve", "authorized"],
        ["o-decline", "declined"],
        ["o-poor", "declined"],
      ],
    );
    assert.ok(!JSON.stringify(rows).includes("tok_"), "card tokens are never stored");
    assert.ok(!JSON.stringify(service.logs.entries).includes("tok_visa"), "nor logged");
  });

  test("the same order with the same request returns the first result, and the processor is asked once", async (t) => {
    const service = await startOnPostgres(t);
    if (!service) return;
    const first = await service.payments.authorizePayment(authorize("o-twice"));
    const again = await service.payments.authorizePayment(authorize("o-twice"));
    assert.deepEqual(again, first);
    const declined = await service.payments.authorizePayment(authorize("o-twice-declined", { cardToken: "tok_declined" }));
    assert.deepEqual(await service.payments.authorizePayment(authorize("o-twice-declined", { cardToken: "tok_declined" })), declined);
    assert.equal(service.processorCalls("o-twice"), 1);
    assert.equal(service.processorCalls("o-twice-declined"), 1);
    assert.equal(await rowCount(service.db), 2);
  });

  test("the same order with a different amount is FAILED_PRECONDITION and the payment is unchanged", async (t) => {
    const service = await startOnPostgres(t);
    if (!service) return;
    const first = await service.payments.authorizePayment(authorize("o-change"));
    const error = await rejection(service.payments.authorizePayment(authorize("o-change", { amountMinor: 9999n })));
    assert.ok(isRpcError(error, Code.FAILED_PRECONDITION), String(error));
    assert.match(error.message, /different request/);
    assert.deepEqual(await service.payments.authorizePayment(authorize("o-change")), first);
    assert.equal((await service.db("payments").where({ order_id: "o-change" }).first()).amount_minor, 4500);
  });

  test("a void that arrives before the authorization wins: the late authorization answers VOIDED without asking the processor", async (t) => {
    const service = await startOnPostgres(t);
    if (!service) return;
    const voided = await service.payments.voidPayment({ orderId: "o-compensated" });
    assert.equal(voided.payment?.status, PaymentStatus.VOIDED);
    assert.deepEqual(await service.payments.voidPayment({ orderId: "o-compensated" }), voided, "voiding twice is the same result");
    const late = await service.payments.authorizePayment(authorize("o-compensated"));
    assert.equal(late.payment?.status, PaymentStatus.VOIDED);
    assert.equal(service.processorCalls("o-compensated"), 0);

    await service.payments.authorizePayment(authorize("o-then-void"));
    assert.equal((await service.payments.voidPayment({ orderId: "o-then-void" })).payment?.status, PaymentStatus.VOIDED);
    assert.equal((await service.payments.authorizePayment(authorize("o-then-void"))).payment?.status, PaymentStatus.VOIDED);
    assert.equal(service.processorCalls("o-then-void"), 1);
  });

  test("10 concurrent identical authorizations: one row, one processor call, one answer for all", async (t) => {
    const service = await startOnPostgres(t);
    if (!service) return;
    const results = await Promise.all(Array.from({ length: 10 }, () => service.payments.authorizePayment(authorize("o-rush"))));
    assert.ok(results.every((result) => result.payment?.status === PaymentStatus.AUTHORIZED));
    assert.equal(new Set(results.map((result) => result.payment?.id)).size, 1);
    assert.equal(await rowCount(service.db), 1);
    assert.equal(service.processorCalls("o-rush"), 1);
  });

  test("two instances on one database, 10 identical authorizations split between them: one processor call in total", TEST_TIMEOUT, async (t) => {
    // A processor latency makes the second instance find the claim pending,
    // so it has to wait for the first instance's outcome.
    const latency = { MESHWORK_LIVE_PAYMENTS_PROCESSOR_LATENCY_MS: "150" };
    const first = await startOnPostgres(t, latency);
    if (!first) return;
    const second = await startInstance(t, { PAYMENTS_DATABASE_URL: first.url, ...latency });
    const results = await Promise.all(Array.from({ length: 10 }, (_, index) => (index % 2 === 0 ? first : second).payments.authorizePayment(authorize("o-two"))));
    assert.equal(new Set(results.map((result) => result.payment?.id)).size, 1);
    assert.ok(results.every((result) => result.payment?.status === PaymentStatus.AUTHORIZED));
    assert.equal(first.processorCalls("o-two") + second.processorCalls("o-two"), 1);
    assert.equal(await rowCount(first.db), 1);
  });

  test("malformed or out-of-range input: INVALID_ARGUMENT naming the field, and no row written", async (t) => {
    const service = await startOnPostgres(t);
    if (!service) return;
    const attempts: [Promise<unknown>, string][] = [
      [service.payments.authorizePayment({ ...authorize("o-bad"), orderId: "" }), "order_id"],
      [service.payments.authorizePayment({ ...authorize("o-bad"), orderId: "x".repeat(5000) }), "order_id"],
      [service.payments.authorizePayment({ orderId: "o-bad", cardToken: "tok_visa" }), "amount"],
      [service.payments.authorizePayment({ ...authorize("o-bad"), amount: { currencyCode: "euro", amountMinor: 100n } }), "amount.currency_code"],
      [service.payments.authorizePayment(authorize("o-bad", { amountMinor: 0n })), "amount.amount_minor"],
      [service.payments.authorizePayment(authorize("o-bad", { amountMinor: -100n })), "amount.amount_minor"],
      [service.payments.authorizePayment(authorize("o-bad", { amountMinor: 10n ** 15n })), "amount.amount_minor"],
      [service.payments.authorizePayment(authorize("o-bad", { cardToken: "" })), "card_token"],
      [service.payments.authorizePayment(authorize("o-bad", { cardToken: "tok\u0000" })), "card_token"],
      [service.payments.voidPayment({ orderId: "o bad" }), "order_id"],
    ];
    for (const [attempt, field] of attempts) {
      const error = await rejection(attempt);
      assert.ok(isRpcError(error, Code.INVALID_ARGUMENT), `expected INVALID_ARGUMENT for ${field}, got ${String(error)}`);
      assert.equal(error.field, field);
      assert.ok(error.message.startsWith(`${field}:`), error.message);
    }
    const zero = await rejection(service.payments.authorizePayment(authorize("o-bad", { amountMinor: 0n })));
    assert.ok(isRpcError(zero) && zero.message === "amount.amount_minor: must be positive");
    assert.equal(await rowCount(service.db), 0);
    assert.equal(service.processorCalls("o-bad"), 0);
    // Still serving afterwards.
    assert.equal((await service.payments.authorizePayment(authorize("o-good"))).payment?.status, PaymentStatus.AUTHORIZED);
  });
});

describe("payments server with live configuration", () => {
  test("without Consul, a change to PAYMENTS_LIVE_CONFIG_FILE reaches the running server; an invalid rate is refused and the old one kept", TEST_TIMEOUT, async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), "meshwork-payments-"));
    t.onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, "live.json");
    const put = async (values: Record<string, unknown>): Promise<void> => {
      await writeFile(`${file}.tmp`, JSON.stringify(values));
      await rename(`${file}.tmp`, file);
    };
    await put({});
    const service = await startInstance(t, { PAYMENTS_DATA_DIR: "memory://", PAYMENTS_LIVE_CONFIG_FILE: file });
    assert.equal((await service.payments.authorizePayment(authorize("o-live-1"))).payment?.status, PaymentStatus.AUTHORIZED);

    const failing = service.logs.next(isChangeOf(LIVE_KEYS.transientFailureRate));
    await put({ [LIVE_KEYS.transientFailureRate]: 1 });
    await failing;
    const unavailable = await rejection(service.payments.authorizePayment(authorize("o-live-2")));
    assert.ok(isRpcError(unavailable, Code.UNAVAILABLE), String(unavailable));

    const refused = service.logs.next((entry) => entry.msg === "refused invalid live config value; keeping the previous one" && entry.key === LIVE_KEYS.transientFailureRate);
    await put({ [LIVE_KEYS.transientFailureRate]: 7 });
    await refused;
    assert.ok(isRpcError(await rejection(service.payments.authorizePayment(authorize("o-live-2"))), Code.UNAVAILABLE), "still failing at the old rate");

    const healed = service.logs.next(isChangeOf(LIVE_KEYS.transientFailureRate));
    await put({ [LIVE_KEYS.transientFailureRate]: 0 });
    await healed;
    assert.equal((await service.payments.authorizePayment(authorize("o-live-2"))).payment?.status, PaymentStatus.AUTHORIZED, "the retry goes through");
  });

  test("with CONSUL_HTTP_ADDR, live settings follow Consul KV (a simulation of Consul's HTTP API, not a live agent)", TEST_TIMEOUT, async (t) => {
    const consul = createConsulHttpApi();
    await consul.start();
    t.onTestFinished(() => consul.stop());
    const service = await startInstance(t, { PAYMENTS_DATA_DIR: "memory://", CONSUL_HTTP_ADDR: `${consul.host}:${consul.port}` });
    assert.equal((await service.payments.authorizePayment(authorize("o-kv-1"))).payment?.status, PaymentStatus.AUTHORIZED);

    const failing = service.logs.next(isChangeOf(LIVE_KEYS.transientFailureRate));
    consul.putKey(`meshwork/${LIVE_KEYS.transientFailureRate}`, "1");
    await failing;
    assert.ok(isRpcError(await rejection(service.payments.authorizePayment(authorize("o-kv-2"))), Code.UNAVAILABLE));

    const refused = service.logs.next((entry) => entry.msg === "refused invalid live config value; keeping the previous one" && entry.key === LIVE_KEYS.transientFailureRate);
    consul.putKey(`meshwork/${LIVE_KEYS.transientFailureRate}`, "7");
    await refused;
    assert.ok(isRpcError(await rejection(service.payments.authorizePayment(authorize("o-kv-2"))), Code.UNAVAILABLE));

    const healed = service.logs.next(isChangeOf(LIVE_KEYS.transientFailureRate));
    consul.deleteKey(`meshwork/${LIVE_KEYS.transientFailureRate}`);
    await healed;
    assert.equal((await service.payments.authorizePayment(authorize("o-kv-2"))).payment?.status, PaymentStatus.AUTHORIZED);
  });
});

describe("payments process", () => {
  test("an invalid setting stops start-up with the variable named", async () => {
    await assert.rejects(startPayments({ PAYMENTS_PORT: "eighty", PAYMENTS_DATA_DIR: "memory://" }), (error: unknown) => {
      return error instanceof ConfigError && /PAYMENTS_PORT \(port\): expected a port number; got "eighty"/.test(error.message);
    });
    await assert.rejects(
      startPayments({ PAYMENTS_PROCESSOR_TIMEOUT_MS: "5000", PAYMENTS_PENDING_LEASE_MS: "4000", PAYMENTS_DATA_DIR: "memory://" }),
      (error: unknown) => error instanceof ConfigError && /PAYMENTS_PENDING_LEASE_MS \(pendingLeaseMs\): must exceed PAYMENTS_PROCESSOR_TIMEOUT_MS/.test(error.message),
    );
  });

  test("as its own process: serves on port 0; on SIGTERM finishes authorizations in flight, closes live config, and exits 0", TEST_TIMEOUT, async (t) => {
    const service = await startServiceProcess(t, { mainFile, name: "payments", env: { PAYMENTS_PORT: "0", PAYMENTS_DATA_DIR: "memory://", PAYMENTS_LOG_LEVEL: "info" } });
    const { client, close } = createClient(PaymentService, { target: `127.0.0.1:${service.port}` });
    t.onTestFinished(close);
    assert.equal((await client.authorizePayment(authorize("o-process"))).payment?.status, PaymentStatus.AUTHORIZED);
    assert.equal(await service.terminate(), 0);
    const steps = service.shutdownSteps();
    assert.deepEqual(steps, [
      "health NOT_SERVING",
      "deregister",
      "drain gRPC calls",
      "finish authorizations in flight",
      "close live config",
      "stop discovery",
      "close database",
      "stop metrics endpoint",
      "flush traces",
    ]);
  });
});
