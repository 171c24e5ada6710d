/**
 * The signed-in session: the access token and who it belongs to. Kept in
 * sessionStorage (this tab only, gone when it closes) and never in a URL.
 */
import { useSyncExternalStore } from "react";

export interface SessionUser {
  readonly id: string;
  readonly email: string;
  readonly displayName: string;
}

export interface Session {
  readonly token: string;
  /** Epoch milliseconds after which the gateway refuses the token. */
  readonly expiresAt: number;
  readonly user: SessionUser;
}

export interface SessionState {
  readonly session: Session | undefined;
  /** Set when the gateway refused the token: the page says so instead of failing silently. */
  readonly expired: boolean;
}

const KEY = "meshwork.session";
const listeners = new Set<() => void>();

function read(): Session | undefined {
  try {
    const text = sessionStorage.getItem(KEY);
    if (text === null) return undefined;
    const session = JSON.parse(text) as Session;
    return session.expiresAt > Date.now() ? session : undefined;
  } catch {
    return undefined;
  }
}

let state: SessionState = { session: read(), expired: false };

function set(next: SessionState): void {
  state = next;
  if (next.session) sessionStorage.setItem(KEY, JSON.stringify(next.session));
  else sessionStorage.removeItem(KEY);
  for (const listener of listeners) listener();
}

export const sessionStore = {
  get: (): SessionState => state,
  /** The token to send, or undefined when signed out or past its expiry. */
  token(): string | undefined {
    if (state.session && state.session.expiresAt <= Date.now()) set({ session: undefined, expired: true });
    return state.session?.token;
  },
  signIn: (session: Session): void => set({ session, expired: false }),
  signOut: (): void => set({ session: undefined, expired: false }),
  /** The gateway answered UNAUTHENTICATED to a call that carried the token. */
  expire: (): void => {
    if (state.session) set({ session: undefined, expired: true });
  },
  subscribe(listener: () => void): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
};

export const useSession = (): SessionState => useSyncExternalStore(sessionStore.subscribe, sessionStore.get);
