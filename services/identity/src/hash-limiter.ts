/**
 * Bounds the password hashing of one instance. scrypt runs on libuv's thread
 * pool (4 threads unless UV_THREADPOOL_SIZE says otherwise), which file
 * access, DNS lookups and other crypto share: a flood of sign-ins that
 * queued a hash each would make every one of those wait behind all of them.
 * Here at most `concurrency` hashes run at once (fewer than the pool has
 * threads, so the rest stay free), at most `queueLimit` wait, and any further
 * attempt is refused at once, before any hashing, to be retried later.
 */
import type { PasswordHasher } from "./password-hash.js";

/** The hashing queue is full: the caller should come back later. */
export class HashCapacityError extends Error {
  override readonly name = "HashCapacityError";
  constructor() {
    super("too many sign-ins and sign-ups are being processed; retry in a moment");
  }
}

export interface HashLimiter {
  /** Runs `work` when a slot is free, in arrival order; rejects with HashCapacityError at once when the queue is full. */
  run<T>(work: () => Promise<T>): Promise<T>;
  stats(): { running: number; queued: number };
}

export function createHashLimiter({ concurrency, queueLimit }: { concurrency: number; queueLimit: number }): HashLimiter {
  let running = 0;
  const waiting: (() => void)[] = [];

  const execute = async <T>(work: () => Promise<T>): Promise<T> => {
    running += 1;
    try {
      return await work();
    } finally {
      running -= 1;
      waiting.shift()?.();
    }
  };

  return {
    run(work) {
      if (running < concurrency) return execute(work);
      if (waiting.length >= queueLimit) return Promise.reject(new HashCapacityError());
      return new Promise((resolve, reject) => {
        waiting.push(() => {
          execute(work).then(resolve, reject);
        });
      });
    },
    stats: () => ({ running, queued: waiting.length }),
  };
}

/** The hasher with every hash and verification going through `limiter`; needsRehash does no hashing and is left as it is. */
export function limitPasswordHasher(hasher: PasswordHasher, limiter: HashLimiter): PasswordHasher {
  return {
    hash: (password) => limiter.run(() => hasher.hash(password)),
    verify: (password, stored) => limiter.run(() => hasher.verify(password, stored)),
    verifyNothing: (password) => limiter.run(() => hasher.verifyNothing(password)),
    needsRehash: (stored) => hasher.needsRehash(stored),
  };
}
