/**
 * Section "saga": orders placed and carried to a final state per second, end
 * to end on real PostgreSQL and RabbitMQ. The four services run in a child
 * process; this process signs shoppers up, keeps a fixed number of orders in
 * flight (place, then wait for the order's final event on the exchange) and
 * measures placement-to-final latency from the event's arrival.
 */
import path from "node:path";
import { randomUUID } from "node:crypto";
import amqp from "amqplib";
import { IdentityService } from "@meshwork/contracts/shop/identity/v1/identity";
import { OrderService } from "@meshwork/contracts/shop/orders/v1/orders";
import { createClient } from "@meshwork/platform";
import type { BenchContext, BenchSection, SectionOutcome } from "./section.js";
import { fixed, formatTable, grouped, percentile } from "./stats.js";

const TARGET_PER_SECOND = 200;
const amqpUrl = process.env.MESHWORK_TEST_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const concurrencyOf = (env: NodeJS.ProcessEnv): number => Number(env.BENCH_SAGA_CONCURRENCY ?? 48);

interface Ready {
  readonly kind: "ready";
  readonly identityPort: number;
  readonly ordersPort: number;
  readonly exchange: string;
}

export const sagaSection: BenchSection = {
  name: "saga",
  estimateMs: (options) => options.warmupMs + options.measureMs * 2 + 8000,
  run: runSagaBench,
};

export async function runSagaBench({ options, print, children }: BenchContext): Promise<SectionOutcome> {
  const concurrency = concurrencyOf(process.env);
  const measureMs = options.measureMs * 2;
  print(`## saga: orders placed and finished per second, end to end (PostgreSQL + RabbitMQ)`);
  print(
    `identity, catalog, payments and orders in one child process, each on its own database; ${concurrency} orders in flight from this process ` +
      `(place, then await the order's final event on the exchange); ${options.warmupMs / 1000} s warm-up + ${measureMs / 1000} s measured`,
  );

  const child = children.fork(
    path.join(import.meta.dirname, "saga-shop.ts"),
    [],
    ["--import", "tsx", ...(process.env.BENCH_SAGA_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_SAGA_PROF}`] : [])],
  );
  const ready = await new Promise<Ready>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`the shop exited with ${code} before it was ready`)));
    child.on("message", (message: Ready) => {
      if (message.kind === "ready") resolve(message);
    });
  });
  const identity = createClient(IdentityService, { target: `127.0.0.1:${ready.identityPort}` });
  const orders = createClient(OrderService, { target: `127.0.0.1:${ready.ordersPort}`, defaultTimeoutMs: 10_000 });

  const connection = await amqp.connect(amqpUrl);
  const channel = await connection.createChannel();
  await channel.assertExchange(ready.exchange, "topic", { durable: true });
  const { queue } = await channel.assertQueue("", { exclusive: true });
  for (const key of ["order.confirmed", "order.rejected", "order.failed"]) await channel.bindQueue(queue, ready.exchange, key);
  const waiting = new Map<string, (status: string) => void>();
  const early = new Map<string, string>();
  await channel.consume(
    queue,
    (message) => {
      if (!message) return;
      const body = JSON.parse(message.content.toString()) as { order: { id: string; status: string } };
      const resolve = waiting.get(body.order.id);
      if (resolve) {
        waiting.delete(body.order.id);
        resolve(body.order.status);
      } else early.set(body.order.id, body.order.status);
    },
    { noAck: true },
  );
  const finalOf = (orderId: string): Promise<string> => {
    const seen = early.get(orderId);
    if (seen) {
      early.delete(orderId);
      return Promise.resolve(seen);
    }
    return new Promise((resolve) => waiting.set(orderId, resolve));
  };

  const shoppers: { authorization: string }[] = [];
  for (let index = 0; index < 16; index++) {
    const email = `bench-${randomUUID()}@example.test`;
    await identity.client.signUp({ email, password: "bench password", displayName: `bench ${index}` });
    const { accessToken } = await identity.client.signIn({ email, password: "bench password" });
    shoppers.push({ authorization: `Bearer ${accessToken}` });
  }

  const products = ["MW-ESPRESSO-CUP", "MW-FIELD-NOTEBOOK", "MW-WOOL-SOCKS", "MW-TEA-TIN", "MW-PENCIL-SET"];
  let failed = 0;
  let firstFailure: string | undefined;
  const statuses = new Map<string, number>();
  const latencies: number[] = [];
  let measuring = false;
  let stop = false;
  const worker = async (index: number): Promise<void> => {
    for (let sequence = 0; !stop; sequence++) {
      const started = performance.now();
      try {
        const { order } = await orders.client.placeOrder(
          {
            idempotencyKey: `bench-${randomUUID()}`,
            items: [{ productId: products[(index + sequence) % products.length]!, quantity: 1 }],
            paymentMethod: { cardToken: sequence % 20 === 0 ? "tok_declined" : "tok_visa" },
          },
          { headers: shoppers[index % shoppers.length]!, parent: null },
        );
        const status = await finalOf(order!.id);
        if (measuring) {
          latencies.push(performance.now() - started);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
        }
      } catch (error) {
        failed++;
        firstFailure ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  const workers = Array.from({ length: concurrency }, (_, index) => worker(index));
  await new Promise((resolve) => setTimeout(resolve, options.warmupMs));
  measuring = true;
  const windowStart = performance.now();
  await new Promise((resolve) => setTimeout(resolve, measureMs));
  measuring = false;
  const seconds = (performance.now() - windowStart) / 1000;
  stop = true;
  await Promise.all(workers);

  const sorted = Float64Array.from(latencies).sort();
  const finished = latencies.length;
  const confirmed = statuses.get("ORDER_STATUS_CONFIRMED") ?? 0;
  for (const line of formatTable(
    ["in flight", "finished/s", "confirmed/s", "p50 ms", "p99 ms", "confirmed", "rejected", "failed", "errors"],
    [
      [
        String(concurrency),
        grouped(Math.round(finished / seconds)),
        grouped(Math.round(confirmed / seconds)),
        fixed(percentile(sorted, 0.5), 1),
        fixed(percentile(sorted, 0.99), 1),
        grouped(confirmed),
        grouped(statuses.get("ORDER_STATUS_REJECTED") ?? 0),
        grouped(statuses.get("ORDER_STATUS_FAILED") ?? 0),
        grouped(failed),
      ],
    ],
  ))
    print(line);
  print(`target (>= ${TARGET_PER_SECOND} confirmed orders/s): ${confirmed / seconds >= TARGET_PER_SECOND ? "MET" : "MISSED"} (${fixed(confirmed / seconds, 0)}/s)`);
  if (firstFailure) print(`first error: ${firstFailure}`);

  identity.close();
  orders.close();
  await connection.close();
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.send({ kind: "stop" });
  await exited;
  return { failedCalls: failed };
}
