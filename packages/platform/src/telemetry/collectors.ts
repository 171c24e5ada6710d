/**
 * Metrics read at scrape time from the parts that know them: the outbox's
 * backlog and the task queue's depth. Reading on scrape (not on a timer)
 * costs nothing between scrapes and is never stale.
 */
import { Gauge } from "prom-client";
import type { OutboxStats } from "../outbox/outbox.js";
import type { TaskQueue } from "../queue/ports.js";
import type { ServiceMetrics } from "./metrics.js";

export function registerOutboxMetrics(metrics: ServiceMetrics, stats: () => Promise<OutboxStats>): void {
  const backlog = new Gauge({ name: "meshwork_outbox_backlog", help: "Outbox rows not yet published.", registers: [metrics.registry] });
  const oldest = new Gauge({ name: "meshwork_outbox_oldest_age_seconds", help: "Age of the oldest unpublished outbox row, in seconds (0 when none).", registers: [metrics.registry] });
  const published = new Gauge({ name: "meshwork_outbox_published", help: "Rows this instance's relay has published since it started.", registers: [metrics.registry] });
  metrics.onScrape(async () => {
    const now = await stats();
    backlog.set(now.backlog);
    oldest.set(now.oldestAgeMs / 1000);
    published.set(now.published);
  });
}

/** meshwork_queue_depth{queue}: messages ready in each of `queues` (omitted while the broker cannot say). */
export function registerQueueMetrics(metrics: ServiceMetrics, queue: Pick<TaskQueue, "depth">, queues: readonly string[]): void {
  const depth = new Gauge({ name: "meshwork_queue_depth", help: "Messages ready in the work queue, waiting for a consumer.", labelNames: ["queue"] as const, registers: [metrics.registry] });
  metrics.onScrape(async () => {
    await Promise.all(
      queues.map(async (name) => {
        const count = await queue.depth(name);
        if (count === undefined) depth.remove(name);
        else depth.labels(name).set(count);
      }),
    );
  });
}
