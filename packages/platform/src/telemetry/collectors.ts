/**
 * Metrics read at scrape time from the parts that know them: the outbox's
 * backlog and the task queue's depth. Reading on scrape (prom-client's async
 * collect) costs nothing between scrapes and is never stale.
 */
import { Gauge } from "prom-client";
import type { OutboxStats } from "../outbox/outbox.js";
import type { TaskQueue } from "../queue/ports.js";
import type { ServiceMetrics } from "./metrics.js";

/**
 * One read shared by the gauges of one scrape: prom-client collects every
 * metric of a registry at once, so three gauges would otherwise ask three times.
 */
function sharedPerScrape<T>(read: () => Promise<T>): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | undefined;
  return () => {
    const now = performance.now();
    if (!last || now - last.at > 250) last = { at: now, value: read() };
    return last.value;
  };
}

export function registerOutboxMetrics(metrics: Pick<ServiceMetrics, "registry">, stats: () => Promise<OutboxStats>): void {
  const read = sharedPerScrape(stats);
  const registers = [metrics.registry];
  new Gauge({
    name: "meshwork_outbox_backlog",
    help: "Outbox rows not yet published.",
    registers,
    async collect() {
      this.set((await read()).backlog);
    },
  });
  new Gauge({
    name: "meshwork_outbox_oldest_age_seconds",
    help: "Age of the oldest unpublished outbox row, in seconds (0 when none).",
    registers,
    async collect() {
      this.set((await read()).oldestAgeMs / 1000);
    },
  });
  new Gauge({
    name: "meshwork_outbox_published",
    help: "Rows this instance's relay has published since it started.",
    registers,
    async collect() {
      this.set((await read()).published);
    },
  });
}

/** meshwork_queue_depth{queue}: messages ready in each of `queues` (left out while the broker cannot say). */
export function registerQueueMetrics(metrics: Pick<ServiceMetrics, "registry">, queue: Pick<TaskQueue, "depth">, queues: readonly string[]): void {
  new Gauge({
    name: "meshwork_queue_depth",
    help: "Messages ready in the work queue, waiting for a consumer.",
    labelNames: ["queue"] as const,
    registers: [metrics.registry],
    async collect() {
      const counts = await Promise.all(queues.map(async (name) => [name, await queue.depth(name)] as const));
      for (const [name, count] of counts) {
        if (count === undefined) this.remove(name);
        else this.labels(name).set(count);
      }
    },
  });
}
