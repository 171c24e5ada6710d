/**
 * The saga runner on a real orders database (PGlite), with scripted steps:
 * what it commits after each step, and that it resumes what another owner
 * left behind. The steps over real gRPC are covered end to end elsewhere.
 */
import assert from "node:assert/strict";
import { describe, test } from "vitest";
import type { TestScope } from "@meshwork/testing";
import { createSilentLogger } from "@meshwork/platform";
import type { OrderRecord } from "../src/orders.js";
import type { SagaSteps } from "../src/ports.js";
import { createSagaRunner, type SagaRunner } from "../src/saga-runner.js";
import type { StepResult } from "../src/saga.js";
import { eventFactory, newOrder, orderStore, ordersDatabase, outboxRoutingKeys } from "./support.js";

interface Script {
  reserve?: StepResult[];
  authorize?: StepResult[];
  compensate?: StepResult[];
}

function scriptedSteps(script: Script, calls: string[]): SagaSteps {
  const next = (list: StepResult[] | undefined, fallback: StepResult): StepResult => list?.shift() ?? fallback;
  return {
    reserveStock: async (order) => {
      calls.push("reserve");
      return next(script.reserve, { kind: "reserved", lines: order.lines.map((line) => ({ productId: line.productId, quantity: line.quantity, unitPriceMinor: 500, currency: "EUR" })) });
    },
    authorizePayment: async () => {
      calls.push("authorize");
      return next(script.authorize, { kind: "authorized" });
    },
    compensate: async (_order, authorizeAttempted) => {
      calls.push(authorizeAttempted ? "void+release" : "release");
      return next(script.compensate, { kind: "compensated", stockReleased: true, paymentVoided: authorizeAttempted });
    },
  };
}

async function setup(t: TestScope, script: Script, owner = "runner-1") {
  const db = (await ordersDatabase(t, "PGlite"))!;
  const loads: string[] = [];
  const reading = orderStore(db);
  // The stream reads the runner makes, by order id.
  // The claims of one order (a kick's), and the leases given back.
  const kickClaims: string[] = [];
  let leaseGivenBack: (orderId: string) => void = () => {};
  const leasesGivenBack = new Promise<string>((resolve) => (leaseGivenBack = resolve));
  const store: typeof reading = {
    ...reading,
    load: (id) => {
      loads.push(id);
      return reading.load(id);
    },
    claim: (claimer, limit, leaseMs, orderId) => {
      if (orderId !== undefined) kickClaims.push(orderId);
      return reading.claim(claimer, limit, leaseMs, orderId);
    },
    releaseLease: async (orderId, holder) => {
      await reading.releaseLease(orderId, holder);
      leaseGivenBack(orderId);
    },
  };
  const calls: string[] = [];
  const finals = new Map<string, (order: OrderRecord) => void>();
  const runner = createSagaRunner({
    store,
    steps: scriptedSteps(script, calls),
    policy: { maxAttempts: 3, backoffBaseMs: 5, backoffMaxMs: 20 },
    event: eventFactory,
    log: createSilentLogger(),
    owner,
    stepTimeoutMs: 1000,
    leaseMs: 5000,
    concurrency: 8,
    pollIntervalMs: 20,
    onChange: (order) => {
      if (order.status !== "pending") finals.get(order.id)?.(order);
    },
  });
  t.onTestFinished(() => runner.stop());
  const finalOf = (orderId: string) => new Promise<OrderRecord>((resolve) => finals.set(orderId, resolve));
  return { db, store, calls, runner, finalOf, loads, kickClaims, leasesGivenBack };
}

const place = async (env: { store: ReturnType<typeof orderStore>; runner: SagaRunner }) => {
  const { order } = await env.store.place(newOrder("u1"), eventFactory);
  return order;
};

describe("saga runner", () => {
  test("a saga kicked with the order as placed starts from it without reading the stream", async (t) => {
    const env = await setup(t, {});
    const order = await place(env);
    const done = env.finalOf(order.id);
    env.runner.kick(order.id, order);
    const final = await done;
    assert.equal(final.status, "confirmed");
    assert.deepEqual(env.calls, ["reserve", "authorize"]);
    assert.deepEqual(env.loads, []);
  });

  test("a saga leased in its placement runs at once without a claim, and no other instance can take it meanwhile", async (t) => {
    const env = await setup(t, {});
    const { order, saga } = await env.store.place(newOrder("u1"), eventFactory, { owner: "runner-1", leaseMs: 5000 });
    assert.equal(saga?.leaseOwner, "runner-1");
    assert.equal(saga?.step, "reserve_stock");
    assert.deepEqual(await env.store.claim("runner-2", 10, 5000), [], "the lease keeps other instances out");
    const done = env.finalOf(order.id);
    env.runner.kick(order.id, order, saga);
    assert.equal((await done).status, "confirmed");
    assert.deepEqual(env.calls, ["reserve", "authorize"]);
    assert.deepEqual(env.kickClaims, []);
    assert.deepEqual(env.loads, []);
  });

  test("a runner with no room for a saga leased in its placement gives the lease back, for any instance's poll", async (t) => {
    const env = await setup(t, {});
    const { order, saga } = await env.store.place(newOrder("u1"), eventFactory, { owner: "runner-1", leaseMs: 60_000 });
    await env.runner.stop();
    env.runner.kick(order.id, order, saga);
    assert.equal(await env.leasesGivenBack, order.id);
    assert.deepEqual(
      (await env.store.claim("runner-2", 10, 5000)).map((claimed) => claimed.orderId),
      [order.id],
    );
    assert.deepEqual(env.calls, []);
  });

  test("happy path: reserved, authorized, CONFIRMED, with its timeline and two events", async (t) => {
    const env = await setup(t, {});
    const order = await place(env);
    const done = env.finalOf(order.id);
    env.runner.kick(order.id);
    const final = await done;
    assert.equal(final.status, "confirmed");
    assert.equal(final.totalMinor, 500);
    assert.deepEqual(env.calls, ["reserve", "authorize"]);
    assert.deepEqual(
      final.history.map((entry) => entry.step),
      ["order_placed", "stock_reserved", "payment_authorized", "order_confirmed"],
    );
    assert.deepEqual(await outboxRoutingKeys(env.db, order.id), ["order.placed", "order.confirmed"]);
  });

  test("a declined card releases the stock, voids, and ends REJECTED with the reason", async (t) => {
    const env = await setup(t, { authorize: [{ kind: "declined", reason: "card declined by the issuer" }] });
    const order = await place(env);
    const done = env.finalOf(order.id);
    env.runner.start();
    const final = await done;
    assert.equal(final.status, "rejected");
    assert.equal(final.reason, "card declined by the issuer");
    assert.deepEqual(env.calls, ["reserve", "authorize", "void+release"]);
    assert.deepEqual(await outboxRoutingKeys(env.db, order.id), ["order.placed", "order.rejected"]);
  });

  test("out of stock: REJECTED without asking for payment", async (t) => {
    const env = await setup(t, { reserve: [{ kind: "stock_refused", reason: "out of stock: P" }] });
    const order = await place(env);
    const done = env.finalOf(order.id);
    env.runner.start();
    assert.equal((await done).status, "rejected");
    assert.deepEqual(env.calls, ["reserve", "release"]);
  });

  test("transient failures are retried after a back-off, and past the bound the order is compensated and FAILED", async (t) => {
    const unavailable: StepResult = { kind: "transient", reason: "UNAVAILABLE" };
    const env = await setup(t, { authorize: [unavailable, unavailable, unavailable], compensate: [unavailable] });
    const order = await place(env);
    const done = env.finalOf(order.id);
    env.runner.start();
    const final = await done;
    assert.equal(final.status, "failed");
    assert.match(final.reason, /payment service stayed unavailable/);
    assert.deepEqual(env.calls, ["reserve", "authorize", "authorize", "authorize", "void+release", "void+release"]);
    assert.deepEqual(await outboxRoutingKeys(env.db, order.id), ["order.placed", "order.failed"]);
  });

  test("a saga left half-way by a crashed owner is resumed once its lease expires", async (t) => {
    const env = await setup(t, {}, "survivor");
    const order = await place(env);
    // Another process claimed it, reserved the stock, and died.
    const [claimed] = await env.store.claim("crashed", 1, 60_000);
    await env.store.apply(
      claimed!,
      order,
      {
        step: "authorize_payment",
        attempts: 0,
        delayMs: 0,
        authorizeAttempted: false,
        outcome: undefined,
        lines: [{ productId: "MW-TEA-TIN", quantity: 1, unitPriceMinor: 500, currency: "EUR" }],
        history: [{ step: "stock_reserved", detail: "" }],
      },
      60_000,
      eventFactory,
    );
    env.runner.start();
    const done = env.finalOf(order.id);
    await env.db("sagas").update({ lease_until: env.db.raw("now() - interval '1 second'") });
    const final = await done;
    assert.equal(final.status, "confirmed");
    assert.deepEqual(env.calls, ["authorize"], "the surviving runner picks up at the step the crashed one reached");
  });
});
