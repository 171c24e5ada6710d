/**
 * `npm run load`: drives the real flow through the gateway, as browsers would
 * (Connect protocol): sign shoppers up, browse, place orders, follow them to a
 * final state, read notifications. Shows progress every second and ends with
 * a table: calls/s per RPC, p50/p95/p99, errors by code, orders by final state.
 *
 *   npm run load                                  30 s, 16 shoppers, as fast as they go
 *   npm run load -- --duration=60 --concurrency=32
 *   npm run load -- --rate=20                     about 20 orders/s (open loop), not faster
 *   npm run load -- --url=http://127.0.0.1:8080 --declined=0.1
 *
 * Every loop is bounded by --duration; it stops by itself. Only loopback
 * addresses are meant as targets.
 */
import { randomUUID } from "node:crypto";
import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { NotificationService } from "@meshwork/contracts/shop/notifications/v1/notifications";
import { OrderService, OrderStatus } from "@meshwork/contracts/shop/orders/v1/orders";

interface Options {
  url: string;
  durationS: number;
  concurrency: number;
  rate: number | undefined;
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
  const known = new Set(["url", "duration", "concurrency", "rate", "declined"]);
  for (const name of flags.keys()) if (!known.has(name)) throw new Error(`unknown option --${name}`);
  const url = flags.get("url") ?? process.env.LOAD_URL ?? "http://127.0.0.1:8080";
  const host = new URL(url).hostname;
  if (!["127.0.0.1", "localhost", "[::1]", "::1"].includes(host) && !host.startsWith("127.")) throw new Error(`--url must point at this machine (loopback), got ${host}`);
  return {
    url,
    durationS: number("duration", 30, 1, 3600),
    concurrency: number("concurrency", 16, 1, 1000),
    rate: flags.has("rate") ? number("rate", 10, 0.1, 10_000) : undefined,
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

async function shopperSession(clients: Clients, recorder: Recorder, options: Options, deadline: number, signal: AbortSignal, once: boolean): Promise<void> {
  const email = `load-${randomUUID()}@example.test`;
  const password = "load test password";
  await recorder.time("IdentityService.SignUp", () => clients.identity.signUp({ email, password, displayName: "Load" }, { signal }));
  const { accessToken } = await recorder.time("IdentityService.SignIn", () => clients.identity.signIn({ email, password }, { signal }));
  const headers = { authorization: `Bearer ${accessToken}` };
  do {
    try {
      await oneOrder(clients, recorder, options, headers, signal);
    } catch {
      // Recorded by the recorder; a shopper who met an error (e.g. the rate limit) pauses and goes on.
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } while (!once && Date.now() < deadline && !signal.aborted);
}

async function oneOrder(clients: Clients, recorder: Recorder, options: Options, headers: Record<string, string>, signal: AbortSignal): Promise<void> {
  {
    const page = await recorder.time("CatalogService.ListProducts", () => clients.catalog.listProducts({ pageSize: 12 }, { signal }));
    const product = page.products[Math.floor(Math.random() * page.products.length)];
    if (!product) return;
    await recorder.time("CatalogService.GetProduct", () => clients.catalog.getProduct({ productId: product.id }, { signal }));
    const cardToken = Math.random() < options.declined ? "tok_declined" : "tok_visa";
    const { order } = await recorder.time("OrderService.PlaceOrder", () =>
      clients.orders.placeOrder({ idempotencyKey: `load-${randomUUID()}`, items: [{ productId: product.id, quantity: 1 }], paymentMethod: { cardToken } }, { headers, signal }),
    );
    const started = performance.now();
    let final: OrderStatus | undefined;
    try {
      for await (const update of clients.orders.watchOrder({ orderId: order!.id }, { headers, signal, timeoutMs: 30_000 })) {
        const status = update.order?.status;
        if (status === OrderStatus.CONFIRMED || status === OrderStatus.REJECTED || status === OrderStatus.FAILED) {
          final = status;
          break;
        }
      }
      recorder.record("OrderService.WatchOrder (to final)", performance.now() - started);
    } catch (error) {
      recorder.fail("OrderService.WatchOrder (to final)", error);
    }
    const name = final === undefined ? "not final" : OrderStatus[final]!;
    recorder.finals.set(name, (recorder.finals.get(name) ?? 0) + 1);
    await recorder.time("NotificationService.ListNotifications", () => clients.notifications.listNotifications({ pageSize: 5 }, { headers, signal }));
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const transport: Transport = createConnectTransport({ baseUrl: options.url, httpVersion: "2", useBinaryFormat: true });
  const clients: Clients = {
    identity: createClient(IdentityService, transport),
    catalog: createClient(CatalogService, transport),
    orders: createClient(OrderService, transport),
    notifications: createClient(NotificationService, transport),
  };
  const recorder = new Recorder();
  const started = Date.now();
  const deadline = started + options.durationS * 1000;
  const stop = new AbortController();
  const hardStop = setTimeout(() => stop.abort(), options.durationS * 1000 + 30_000);
  process.once("SIGINT", () => stop.abort());
  process.stdout.write(
    `load: ${options.url}, ${options.durationS} s, ${options.rate ? `${options.rate} orders/s (open loop)` : `${options.concurrency} shoppers (closed loop)`}, ${Math.round(options.declined * 100)}% declined cards\n`,
  );

  let lastCalls = 0;
  const progress = setInterval(() => {
    const elapsed = Math.round((Date.now() - started) / 1000);
    const finals = [...recorder.finals].map(([name, count]) => `${name} ${count}`).join(", ") || "none final yet";
    process.stdout.write(`  ${String(elapsed).padStart(4)} s  ${recorder.calls - lastCalls} calls/s  ${recorder.failures} errors  orders: ${finals}\n`);
    lastCalls = recorder.calls;
  }, 1000);

  const sessions: Promise<void>[] = [];
  const run = (once: boolean): void => {
    sessions.push(shopperSession(clients, recorder, options, deadline, stop.signal, once).catch(() => undefined));
  };
  if (options.rate) {
    // Open loop: a new shopper with one order every 1/rate s, however slow the system gets.
    const interval = 1000 / options.rate;
    for (let next = Date.now(); next < deadline && !stop.signal.aborted; next += interval) {
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - Date.now())));
      run(true);
    }
  } else {
    for (let index = 0; index < options.concurrency; index++) run(false);
  }
  await Promise.all(sessions);
  clearInterval(progress);
  clearTimeout(hardStop);
  const seconds = (Date.now() - started) / 1000;
  process.stdout.write(`\n${recorder.table(seconds).join("\n")}\n\n`);
  process.stdout.write(`orders by final state: ${[...recorder.finals].map(([name, count]) => `${name} ${count}`).join(", ") || "none"} (${seconds.toFixed(1)} s)\n`);
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
