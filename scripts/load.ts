/**
 * `npm run load`: drives the real flow through the gateway, as browsers would
 * (Connect protocol): sign shoppers up, browse, place orders, follow them to a
 * final state, read notifications. Shows progress every second and ends with
 * a table: calls/s per RPC, p50/p95/p99, errors by code, orders by final state.
 *
 *   npm run load                                  30 s, 16 shoppers, as fast as they go (closed loop)
 *   npm run load -- --duration=60 --concurrency=32
 *   npm run load -- --rate=150                    150 orders/s at fixed times (open loop), from 16 shoppers
 *   npm run load -- --rate=150 --count=3000 --max-in-flight=500
 *   npm run load -- --url=http://127.0.0.1:8080 --declined=0.1
 *
 * Open loop (--rate): orders (PlaceOrder, then WatchOrder to a final state)
 * are sent at intended times start + i/rate whether or not earlier ones were
 * answered, and latencies count from the intended time, so queueing is not
 * hidden by sending later (see scripts/lib/open-loop.ts). The shoppers sign up
 * and in before the clock starts.
 *
 * Every loop is bounded by --duration (and --count); it stops by itself. Each
 * call has an abort signal of its own (scripts/lib/call-signals.ts). Only
 * loopback addresses are meant as targets.
 */
import { randomUUID } from "node:crypto";
import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { NotificationService } from "@meshwork/contracts/shop/notifications/v1/notifications";
import { DeliveryOption, OrderService, OrderStatus } from "@meshwork/contracts/shop/orders/v2/orders";
import { createCallSignals, type CallSignals } from "./lib/call-signals.js";
import { percentileOf, plannedCount, realClock, runOpenLoop, type Arrival, type OpenLoopResult } from "./lib/open-loop.js";

/** How long an order may take from placement to its final state before the watch gives up. */
const WATCH_TIMEOUT_MS = 30_000;
const CALL_TIMEOUT_MS = 10_000;

interface Options {
  url: string;
  durationS: number;
  /** Closed loop: shoppers ordering over and over. Open loop: shoppers signed in first, whose turns the orders take. */
  concurrency: number;
  /** Orders per second, open loop; closed loop when undefined. */
  rate: number | undefined;
  /** Open loop: most orders to send (default rate × duration). */
  count: number | undefined;
  /** Open loop: orders in flight at most; an arrival beyond is shed and counted. */
  maxInFlight: number;
  declined: number;
}

function parseOptions(argv: readonly string[]): Options {
  const flags = new Map(argv.filter((arg) => arg.startsWith("--")).map((arg) => [arg.slice(2).split("=")[0]!, arg.split("=").slice(1).join("=")]));
  const number = (name: string, fallback: number, min: number, max: number): number => {
    const raw = flags.get(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min || value > max) throw new Error(`--${name} must be a number from ${min} to ${max} (got "${raw}")`);
    return value;
  };
  const known = new Set(["url", "duration", "concurrency", "rate", "count", "max-in-flight", "declined"]);
  for (const name of flags.keys()) if (!known.has(name)) throw new Error(`unknown option --${name}`);
  const url = flags.get("url") ?? process.env.LOAD_URL ?? "http://127.0.0.1:8080";
  const host = new URL(url).hostname;
  if (!["127.0.0.1", "localhost", "[::1]", "::1"].includes(host) && !host.startsWith("127.")) throw new Error(`--url must point at this machine (loopback), got ${host}`);
  return {
    url,
    durationS: number("duration", 30, 1, 3600),
    concurrency: number("concurrency", 16, 1, 1000),
    rate: flags.has("rate") ? number("rate", 10, 0.1, 10_000) : undefined,
    count: flags.has("count") ? number("count", 1, 1, 10_000_000) : undefined,
    maxInFlight: number("max-in-flight", 1000, 1, 100_000),
    declined: number("declined", 0.1, 0, 1),
  };
}

/** Latencies and outcomes per RPC. */
class Recorder {
  private readonly latencies = new Map<string, number[]>();
  private readonly errors = new Map<string, Map<string, number>>();
  readonly finals = new Map<string, number>();
  calls = 0;
  failures = 0;

  async time<T>(rpc: string, work: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const result = await work();
      this.record(rpc, performance.now() - started);
      return result;
    } catch (error) {
      this.fail(rpc, error);
      throw error;
    }
  }

  record(rpc: string, ms: number): void {
    this.calls++;
    const list = this.latencies.get(rpc) ?? [];
    list.push(ms);
    this.latencies.set(rpc, list);
  }

  fail(rpc: string, error: unknown): void {
    this.calls++;
    this.failures++;
    const code = error instanceof ConnectError ? Code[error.code] : "client error";
    const byCode = this.errors.get(rpc) ?? new Map<string, number>();
    byCode.set(code!, (byCode.get(code!) ?? 0) + 1);
    this.errors.set(rpc, byCode);
  }

  *errorCodes(): Iterable<string> {
    for (const byCode of this.errors.values()) yield* byCode.keys();
  }

  table(seconds: number): string[] {
    const pct = (sorted: number[], p: number): string => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!.toFixed(1) : "-");
    const rpcs = [...new Set([...this.latencies.keys(), ...this.errors.keys()])].sort();
    const rows = rpcs.map((rpc) => {
      const sorted = [...(this.latencies.get(rpc) ?? [])].sort((a, b) => a - b);
      const errors = [...(this.errors.get(rpc) ?? new Map<string, number>())].map(([code, count]) => `${code} ${count}`).join(", ") || "-";
      return [rpc, String(sorted.length), (sorted.length / seconds).toFixed(1), pct(sorted, 0.5), pct(sorted, 0.95), pct(sorted, 0.99), errors];
    });
    return formatTable(["rpc", "ok", "calls/s", "p50 ms", "p95 ms", "p99 ms", "errors by code"], rows);
  }
}

function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((title, index) => Math.max(title.length, ...rows.map((row) => row[index]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, index) => cell.padEnd(widths[index]!))
      .join("  ")
      .trimEnd();
  return [line(header), line(widths.map((width) => "-".repeat(width))), ...rows.map(line)];
}

interface Clients {
  identity: Client<typeof IdentityService>;
  catalog: Client<typeof CatalogService>;
  orders: Client<typeof OrderService>;
  notifications: Client<typeof NotificationService>;
}

/** A call recorded under its RPC name, with an abort signal of its own and a deadline. */
type Call = <T>(rpc: string, work: (init: { signal: AbortSignal; timeoutMs: number }) => Promise<T>) => Promise<T>;

function callsThrough(recorder: Recorder, signals: CallSignals): Call {
  return (rpc, work) => recorder.time(rpc, () => signals.run((signal) => work({ signal, timeoutMs: CALL_TIMEOUT_MS })));
}

/**
 * Where the load's orders go. The load drives shop.orders.v2, as the web shop
 * does: through the deprecated v1 it kept meshwork_api_deprecated_calls_total
 * climbing, the very figure an operator watches to decide when v1 may go.
 */
const SHIPPING = {
  shippingAddress: { recipientName: "Load Test", line1: "1 Benchmark Road", line2: "", city: "Testville", postalCode: "12345", countryCode: "DE" },
  deliveryOption: DeliveryOption.STANDARD,
};

interface Shopper {
  readonly headers: Record<string, string>;
}

async function signUp(clients: Clients, call: Call): Promise<Shopper> {
  const email = `load-${randomUUID()}@example.test`;
  const password = "load test password";
  await call("IdentityService.SignUp", (init) => clients.identity.signUp({ email, password, displayName: "Load" }, init));
  const { accessToken } = await call("IdentityService.SignIn", (init) => clients.identity.signIn({ email, password }, init));
  return { headers: { authorization: `Bearer ${accessToken}` } };
}

/** Closed loop: one shopper browsing and ordering, again and again, until the deadline. */
async function shopperSession(clients: Clients, recorder: Recorder, signals: CallSignals, options: Options, deadline: number, stop: AbortSignal): Promise<void> {
  const call = callsThrough(recorder, signals);
  const shopper = await signUp(clients, call);
  while (Date.now() < deadline && !stop.aborted) {
    try {
      await oneOrder(clients, recorder, signals, options, shopper.headers);
    } catch {
      // Recorded by the recorder; a shopper who met an error (e.g. the rate limit) pauses and goes on.
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

async function oneOrder(clients: Clients, recorder: Recorder, signals: CallSignals, options: Options, headers: Record<string, string>): Promise<void> {
  const call = callsThrough(recorder, signals);
  const page = await call("CatalogService.ListProducts", (init) => clients.catalog.listProducts({ pageSize: 12 }, init));
  const product = page.products[Math.floor(Math.random() * page.products.length)];
  if (!product) return;
  await call("CatalogService.GetProduct", (init) => clients.catalog.getProduct({ productId: product.id }, init));
  const cardToken = Math.random() < options.declined ? "tok_declined" : "tok_visa";
  const { order } = await call("OrderService.PlaceOrder", (init) =>
    clients.orders.placeOrder({ idempotencyKey: `load-${randomUUID()}`, items: [{ productId: product.id, quantity: 1 }], paymentMethod: { cardToken }, ...SHIPPING }, { ...init, headers }),
  );
  const started = performance.now();
  await watchToFinal(clients, recorder, signals, order!.id, headers, started, "OrderService.WatchOrder (to final)");
  await call("NotificationService.ListNotifications", (init) => clients.notifications.listNotifications({ pageSize: 5 }, { ...init, headers }));
}

/** Follows an order to its final state; records the time from `since` under `rpc`, and the final state. Throws if it got none. */
async function watchToFinal(clients: Clients, recorder: Recorder, signals: CallSignals, orderId: string, headers: Record<string, string>, since: number, rpc: string): Promise<void> {
  let final: OrderStatus | undefined;
  try {
    await signals.run(async (signal) => {
      for await (const update of clients.orders.watchOrder({ orderId }, { headers, signal, timeoutMs: WATCH_TIMEOUT_MS })) {
        const status = update.order?.status;
        if (status === OrderStatus.CONFIRMED || status === OrderStatus.REJECTED || status === OrderStatus.FAILED) {
          final = status;
          break;
        }
      }
    });
    if (final === undefined) throw new ConnectError("the watch ended before the order was final", Code.Unknown);
    recorder.record(rpc, performance.now() - since);
  } catch (error) {
    recorder.fail(rpc, error);
    throw error;
  } finally {
    const name = final === undefined ? "not final" : OrderStatus[final]!;
    recorder.finals.set(name, (recorder.finals.get(name) ?? 0) + 1);
  }
}

/** Open loop: one order at its intended time; both latencies count from that time, not from when it went out. */
async function openLoopOrder(clients: Clients, recorder: Recorder, signals: CallSignals, options: Options, shopper: Shopper, productId: string, arrival: Arrival): Promise<void> {
  const cardToken = Math.random() < options.declined ? "tok_declined" : "tok_visa";
  let orderId: string;
  try {
    const { order } = await signals.run((signal) =>
      clients.orders.placeOrder(
        { idempotencyKey: `load-${randomUUID()}`, items: [{ productId, quantity: 1 }], paymentMethod: { cardToken }, ...SHIPPING },
        { headers: shopper.headers, signal, timeoutMs: CALL_TIMEOUT_MS },
      ),
    );
    orderId = order!.id;
    recorder.record("OrderService.PlaceOrder (from intended send)", performance.now() - arrival.intendedAt);
  } catch (error) {
    recorder.fail("OrderService.PlaceOrder (from intended send)", error);
    throw error;
  }
  await watchToFinal(clients, recorder, signals, orderId, shopper.headers, arrival.intendedAt, "OrderService.WatchOrder (final, from intended send)");
}

async function runOpenLoopMode(clients: Clients, recorder: Recorder, signals: CallSignals, options: Options, rate: number, stop: AbortSignal): Promise<OpenLoopResult> {
  const call = callsThrough(recorder, signals);
  const shoppers: { shopper: Shopper; clients: Clients }[] = [];
  for (let index = 0; index < options.concurrency; index++) {
    const own = connect(options.url);
    shoppers.push({ shopper: await signUp(own, call), clients: own });
  }
  const { products } = await call("CatalogService.ListProducts", (init) => clients.catalog.listProducts({ pageSize: 12 }, init));
  if (products.length === 0) throw new Error("the catalog lists no products: nothing to order");
  process.stdout.write(`  ${shoppers.length} shoppers signed in, ${products.length} products; sending\n`);
  const plan = { ratePerSecond: rate, count: options.count ?? Number.POSITIVE_INFINITY, durationMs: options.durationS * 1000, maxInFlight: options.maxInFlight };
  return runOpenLoop(
    plan,
    realClock,
    (arrival) => {
      const { shopper, clients: own } = shoppers[arrival.index % shoppers.length]!;
      return openLoopOrder(own, recorder, signals, options, shopper, products[arrival.index % products.length]!.id, arrival);
    },
    stop,
  );
}

function openLoopSummary(result: OpenLoopResult, rate: number): string[] {
  const ms = (value: number): string => (Number.isFinite(value) ? value.toFixed(1) : "-");
  return [
    `open loop: ${result.sent} of ${result.planned} orders sent at ${rate}/s intended, achieved ${result.achievedRate.toFixed(1)}/s` +
      (result.shed > 0 ? `; ${result.shed} shed at the in-flight cap` : "") +
      `; the sender fell at most ${ms(result.maxSendLagMs)} ms behind its schedule`,
    `placement to final state, from the intended send time: p50 ${ms(percentileOf(result.latenciesMs, 50))} ms, p99 ${ms(percentileOf(result.latenciesMs, 99))} ms ` +
      `(${result.succeeded} orders final); errors ${result.failed + result.shed}` +
      (result.shed > 0 ? ` (${result.failed} failed, ${result.shed} shed)` : ""),
  ];
}

/**
 * Clients over an HTTP/2 connection of their own. Each shopper gets one, as
 * each browser has its own: the gateway admits at most 100 streams per
 * connection (GATEWAY_MAX_STREAMS_PER_CONNECTION), and one connection shared
 * by every shopper turned each call past 100 in flight into a refused
 * stream, which the client reports as Internal.
 */
function connect(url: string): Clients {
  const transport: Transport = createConnectTransport({ baseUrl: url, httpVersion: "2", useBinaryFormat: true });
  return {
    identity: createClient(IdentityService, transport),
    catalog: createClient(CatalogService, transport),
    orders: createClient(OrderService, transport),
    notifications: createClient(NotificationService, transport),
  };
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const clients = connect(options.url);
  const recorder = new Recorder();
  const started = Date.now();
  const deadline = started + options.durationS * 1000;
  const stop = new AbortController();
  const signals = createCallSignals(stop.signal);
  // Whatever is still in flight after the run and the longest wait it allows is abandoned (and counted).
  const hardStop = setTimeout(() => stop.abort(new Error("load: hard stop")), options.durationS * 1000 + WATCH_TIMEOUT_MS + 30_000);
  process.once("SIGINT", () => stop.abort(new Error("load: interrupted")));
  const planned =
    options.rate === undefined
      ? undefined
      : plannedCount({ ratePerSecond: options.rate, count: options.count ?? Number.POSITIVE_INFINITY, durationMs: options.durationS * 1000, maxInFlight: options.maxInFlight });
  process.stdout.write(
    `load: ${options.url}, ${options.durationS} s, ` +
      (options.rate === undefined
        ? `${options.concurrency} shoppers (closed loop)`
        : `${options.rate} orders/s open loop (${planned} orders at most, ${options.maxInFlight} in flight at most, from ${options.concurrency} shoppers)`) +
      `, ${Math.round(options.declined * 100)}% declined cards\n`,
  );

  let lastCalls = 0;
  const progress = setInterval(() => {
    const elapsed = Math.round((Date.now() - started) / 1000);
    const finals = [...recorder.finals].map(([name, count]) => `${name} ${count}`).join(", ") || "none final yet";
    process.stdout.write(`  ${String(elapsed).padStart(4)} s  ${recorder.calls - lastCalls} calls/s  ${recorder.failures} errors  ${signals.live} in flight  orders: ${finals}\n`);
    lastCalls = recorder.calls;
  }, 1000);

  let openLoop: OpenLoopResult | undefined;
  if (options.rate !== undefined) {
    openLoop = await runOpenLoopMode(clients, recorder, signals, options, options.rate, stop.signal);
  } else {
    const sessions = Array.from({ length: options.concurrency }, () => shopperSession(connect(options.url), recorder, signals, options, deadline, stop.signal).catch(() => undefined));
    await Promise.all(sessions);
  }
  clearInterval(progress);
  clearTimeout(hardStop);
  const seconds = (Date.now() - started) / 1000;
  process.stdout.write(`\n${recorder.table(seconds).join("\n")}\n\n`);
  process.stdout.write(`orders by final state: ${[...recorder.finals].map(([name, count]) => `${name} ${count}`).join(", ") || "none"} (${seconds.toFixed(1)} s)\n`);
  if (openLoop && options.rate !== undefined) for (const line of openLoopSummary(openLoop, options.rate)) process.stdout.write(`${line}\n`);
  if ([...recorder.errorCodes()].includes("ResourceExhausted")) {
    process.stdout.write("note: ResourceExhausted is the gateway's rate limit per user and per address (live settings gateway/rate-limit-*); raise them to measure capacity.\n");
  }
  // The HTTP/2 session would keep the process alive.
  process.exit(recorder.calls === 0 ? 1 : 0);
}

main().catch((error: unknown) => {
  process.stderr.write(`load failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
