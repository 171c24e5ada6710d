/** The cart, kept in sessionStorage so a reload keeps it. */
import { useSyncExternalStore } from "react";

export interface CartLine {
  readonly productId: string;
  readonly name: string;
  readonly priceMinor: number;
  readonly currencyCode: string;
  readonly quantity: number;
}

const KEY = "meshwork.cart";
const listeners = new Set<() => void>();

function read(): readonly CartLine[] {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) ?? "[]") as CartLine[];
  } catch {
    return [];
  }
}

let lines: readonly CartLine[] = read();

function set(next: readonly CartLine[]): void {
  lines = next;
  sessionStorage.setItem(KEY, JSON.stringify(next));
  for (const listener of listeners) listener();
}

export const cartStore = {
  get: (): readonly CartLine[] => lines,
  add(line: Omit<CartLine, "quantity">, quantity = 1): void {
    const existing = lines.find((l) => l.productId === line.productId);
    set(existing ? lines.map((l) => (l === existing ? { ...l, quantity: l.quantity + quantity } : l)) : [...lines, { ...line, quantity }]);
  },
  setQuantity(productId: string, quantity: number): void {
    set(quantity <= 0 ? lines.filter((l) => l.productId !== productId) : lines.map((l) => (l.productId === productId ? { ...l, quantity } : l)));
  },
  clear: (): void => set([]),
  subscribe(listener: () => void): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
};

export const useCart = (): readonly CartLine[] => useSyncExternalStore(cartStore.subscribe, cartStore.get);
