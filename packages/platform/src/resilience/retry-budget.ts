/**
 * The retry budget of one downstream: gRPC's retry throttling (gRFC A6) as a
 * token bucket. Written here because neither cockatiel nor grpc-js offers it
 * above the channel: grpc-js throttles retries inside one channel, and our
 * retries must be able to move to another instance (another channel).
 */
export interface RetryBudget {
  /** A call ended well (first attempt or a retry). */
  recordSuccess(): void;
  /** An attempt failed with a retryable status. */
  recordFailure(): void;
  /** May a failed call be tried again now? */
  allowRetry(): boolean;
  /** Tokens left, for metrics and tests. */
  tokens(): number;
}

export function createRetryBudget(settings: () => { readonly maxTokens: number; readonly tokenRatio: number }): RetryBudget {
  let tokens = settings().maxTokens;
  return {
    recordSuccess() {
      const { maxTokens, tokenRatio } = settings();
      tokens = Math.min(maxTokens, tokens + tokenRatio);
    },
    recordFailure() {
      tokens = Math.max(0, tokens - 1);
    },
    allowRetry() {
      return tokens > settings().maxTokens / 2;
    },
    tokens: () => tokens,
  };
}
