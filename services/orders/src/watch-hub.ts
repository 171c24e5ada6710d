import type { OrderRecord } from "./orders.js";

/**
 * Wakes WatchOrder streams when this process changes an order. Changes made
 * by another instance are seen by the stream's poll instead (see service.ts).
 */
export interface WatchHub {
  notify(order: OrderRecord): void;
  /** Resolves at the next change of the order, after timeoutMs, or when the signal aborts. */
  next(orderId: string, timeoutMs: number, signal: AbortSignal): Promise<void>;
}

export function createWatchHub(): WatchHub {
  const waiting = new Map<string, Set<() => void>>();
  return {
    notify(order) {
      const wakers = waiting.get(order.id);
      if (!wakers) return;
      waiting.delete(order.id);
      wakers.forEach((wake) => wake());
    },
    next(orderId, timeoutMs, signal) {
      return new Promise((resolve) => {
        const wakers = waiting.get(orderId) ?? new Set<() => void>();
        waiting.set(orderId, wakers);
        const done = (): void => {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          wakers.delete(done);
          if (wakers.size === 0 && waiting.get(orderId) === wakers) waiting.delete(orderId);
          resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        signal.addEventListener("abort", done, { once: true });
        wakers.add(done);
      });
    },
  };
}
