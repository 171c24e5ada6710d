/**
 * Bounds on streaming calls at the edge (WatchOrder, WatchNotifications, and
 * the gateway's own watches when they need a token): how many one signed-in
 * user may hold open at once, and that none outlives the token it was opened
 * with. A stream is checked once, when it starts; without the timer a token
 * that expired (or was meant to be short-lived) would keep a stream alive,
 * and its backend working, for as long as the client liked.
 */
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { tokenExpiresAtKey, userKey } from "./edge-context.js";

export interface StreamGuardOptions {
  /** Streams one user may hold open on this gateway instance. */
  readonly maxPerUser: number;
  readonly now?: () => number;
}

export interface StreamGuard {
  /** A Connect interceptor; it must run after the request gate has verified the user. */
  readonly interceptor: Interceptor;
  /** Streams `userId` holds open right now. */
  openStreams(userId: string): number;
}

/** setTimeout's longest delay; tokens live a day at most, so this is only a guard against overflow. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function createStreamGuard(options: StreamGuardOptions): StreamGuard {
  const now = options.now ?? Date.now;
  const open = new Map<string, number>();

  const interceptor: Interceptor = (next) => async (request) => {
    const user = request.contextValues.get(userKey);
    // Unary calls are bounded by their deadline; public streams by the
    // per-address rate limit and the per-connection stream cap.
    if (!request.stream || user === undefined) return next(request);

    const held = open.get(user.userId) ?? 0;
    if (held >= options.maxPerUser) {
      throw new ConnectError(`too many open streams for this user (at most ${options.maxPerUser}): close one and call again`, Code.ResourceExhausted);
    }
    open.set(user.userId, held + 1);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      const left = (open.get(user.userId) ?? 1) - 1;
      if (left > 0) open.set(user.userId, left);
      else open.delete(user.userId);
    };
    // Connect aborts the call's signal whenever the call ends (finished,
    // failed, or the client gone), also if the response is never read.
    request.signal.addEventListener("abort", release, { once: true });
    if (request.signal.aborted) release();

    try {
      const response = await next(request);
      if (!response.stream) {
        release();
        return response;
      }
      const expiresAt = request.contextValues.get(tokenExpiresAtKey);
      return { ...response, message: untilExpiry(response.message, expiresAt, now, release) };
    } catch (error) {
      release();
      throw error;
    }
  };

  return { interceptor, openStreams: (userId) => open.get(userId) ?? 0 };
}

/**
 * The messages of `messages` until the token expires at `expiresAt` (epoch
 * ms), then UNAUTHENTICATED. Ending the response makes Connect abort the
 * call's signal, which cancels the backend call behind it.
 */
async function* untilExpiry<T>(messages: AsyncIterable<T>, expiresAt: number | undefined, now: () => number, done: () => void): AsyncGenerator<T> {
  const iterator = messages[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  const expired =
    expiresAt === undefined
      ? new Promise<never>(() => {})
      : new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new ConnectError("the access token expired: sign in again and reopen the stream", Code.Unauthenticated)),
            Math.min(MAX_TIMER_MS, Math.max(0, expiresAt - now())),
          );
        });
  // Rejected while a message is being written: seen at the next race.
  expired.catch(() => {});
  let pending: Promise<IteratorResult<T>> | undefined;
  try {
    for (;;) {
      pending = iterator.next();
      const result = await Promise.race([pending, expired]);
      pending = undefined;
      if (result.done) return;
      yield result.value;
    }
  } finally {
    clearTimeout(timer);
    done();
    if (pending !== undefined) {
      // Abandoned mid-wait (expiry): the handler ends once its signal is
      // aborted; its last answer, or failure, has no one left to read it.
      pending.catch(() => {});
      void iterator.return?.()?.catch(() => {});
    }
  }
}
