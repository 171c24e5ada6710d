/**
 * What the chaos tests share besides the mesh (test/e2e/test-mesh.ts): a
 * shopper talking Connect to its gateway,
 * a bounded catalog read load that records every call, and SQL on a
 * service's database. Each test prints its measured figures.
 */
import { randomUUID } from "node:crypto";
import { createClient as createConnectClient, ConnectError } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { bulkhead } from "cockatiel";
import pg from "pg";
import { CatalogService } from "@meshwork/contracts/shop/catalog/v1/catalog";
import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { OrderService, OrderStatus } from "@meshwork/contracts/shop/orders/v1/orders";
import { adminUrl } from "@meshwork/testing";

/** A signed-in shopper talking Connect (HTTP/1.1 JSON) to the gateway. */
export async function shopper(gatewayPort: number) {
  const transport = createConnectTransport({ baseUrl: `http://127.0.0.1:${gatewayPort}`, httpVersion: "1.1" });
  const identity = createConnectClient(IdentityService, transport);
  const catalog = createConnectClient(CatalogService, transport);
  const orders = createConnectClient(OrderService, transport);
  const email = `chaos-${randomUUID()}@example.test`;
  const password = "correct horse battery";
  await identity.signUp({ email, password, displayName: "Chaos shopper" });
  const token = (await identity.signIn({ email, password })).accessToken;
  const headers = { authorization: `Bearer ${token}` };
  // The gateway refuses a user's 17th open stream (GATEWAY_MAX_STREAMS_PER_USER,
  // 16): a client following many orders holds at most 8 watches at once and
  // queues the rest, as a real client of this edge must.
  const watches = bulkhead(8, Number.POSITIVE_INFINITY);
  return {
    catalog,
    orders,
    async placeOrder(productId: string, idempotencyKey = `chaos-${randomUUID()}`, cardToken = "tok_visa"): Promise<string> {
      const { order } = await orders.placeOrder({ idempotencyKey, items: [{ productId, quantity: 1 }], paymentMethod: { cardToken } }, { headers });
      return order!.id;
    },
    followToFinal(orderId: string, timeoutMs = 60_000): Promise<{ status: OrderStatus; reason: string }> {
      return watches.execute(async () => {
        for await (const { order } of orders.watchOrder({ orderId }, { headers, signal: AbortSignal.timeout(timeoutMs) })) {
          if (order && order.status !== OrderStatus.PENDING) return { status: order.status, reason: order.reason };
        }
        throw new Error(`the stream of ${orderId} ended before a final state`);
      });
    },
    headers,
  };
}

export interface LoadResult {
  readonly calls: number;
  readonly errors: number;
  /** Each failed call by when it failed, ms since the load started. */
  readonly errorTimes: readonly number[];
  readonly errorCodes: Readonly<Record<string, number>>;
  readonly latencies: readonly number[];
  readonly durationMs: number;
}

/** GetProduct through the gateway from `concurrency` loops until `signal` aborts. */
export async function catalogReadLoad(catalog: Awaited<ReturnType<typeof shopper>>["catalog"], productId: string, concurrency: number, signal: AbortSignal): Promise<LoadResult> {
  const started = performance.now();
  const latencies: number[] = [];
  const errorTimes: number[] = [];
  const errorCodes: Record<string, number> = {};
  let calls = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (!signal.aborted) {
        const begin = performance.now();
        calls += 1;
        try {
          await catalog.getProduct({ productId }, { timeoutMs: 5000 });
          latencies.push(performance.now() - begin);
        } catch (error) {
          // When the failure was seen, not when the call began: a call in flight
          // when an instance dies began before the kill but fails because of it.
          errorTimes.push(performance.now() - started);
          const code = error instanceof ConnectError ? String(error.code) : "client";
          errorCodes[code] = (errorCodes[code] ?? 0) + 1;
        }
      }
    }),
  );
  return { calls, errors: errorTimes.length, errorTimes, errorCodes, latencies, durationMs: performance.now() - started };
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

export const ms = (value: number): string => `${value.toFixed(1)} ms`;

/** Runs `sql` as the superuser on the mesh's database of `service`. */
export async function queryServiceDb<R extends pg.QueryResultRow>(service: string, suffix: string, sql: string, params: unknown[] = []): Promise<R[]> {
  const url = new URL(adminUrl());
  url.pathname = `/meshwork_${service}${suffix}`;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    return (await client.query<R>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** Prints a figure block that survives the test reporter (stderr, one line each). */
export function report(title: string, figures: Record<string, string | number>): void {
  const width = Math.max(...Object.keys(figures).map((key) => key.length));
  process.stderr.write(
    `\n[chaos] ${title}\n${Object.entries(figures)
      .map(([key, value]) => `[chaos]   ${key.padEnd(width)}  ${value}`)
      .join("\n")}\n`,
  );
}
