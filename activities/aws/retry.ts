/**
 * The SDK's retries, without its retry quota (docs/aws.md §6.4).
 *
 * Each SDK client keeps a quota of 500 retry tokens; every retry spends 5 (10 after a timeout or 5xx)
 * and only successes earn them back, one each. The quota exists so a fleet of clients does not
 * multiply an outage; Countersign's clients live as long as the worker, so a throttling spell of a few
 * hundred calls drains it, and from then on every throttled call fails at its first attempt — the
 * activity fails and starts over, and a large account never finishes planning. Here the per-account
 * limiter (activities/aws/rate-limit.ts) is what backs off: it halves the calls in flight on throttling.
 * So the quota is refilled before each retry; attempts, backoff with jitter and (adaptive mode) the
 * SDK's client-side rate limiter are the SDK's own, untouched.
 */
import { DefaultRateLimiter, INITIAL_RETRY_TOKENS, StandardRetryStrategy } from '@smithy/core/retry';
import type { RetryErrorInfo, RetryStrategyV2, StandardRetryToken } from '@smithy/types';

/** A token whose cost is the whole quota: recordSuccess of it fills the quota back up. */
const REFILL = { getRetryCost: () => INITIAL_RETRY_TOKENS } as unknown as StandardRetryToken;

export function retryStrategy(mode: string | undefined, maxAttempts: number): RetryStrategyV2 {
  const standard = new StandardRetryStrategy(maxAttempts);
  const uncapped = {
    acquireInitialRetryToken: (scope: string) => standard.acquireInitialRetryToken(scope),
    refreshRetryTokenForRetry: (token: StandardRetryToken, info: RetryErrorInfo) => {
      standard.recordSuccess(REFILL);
      return standard.refreshRetryTokenForRetry(token, info);
    },
    recordSuccess: (token: StandardRetryToken) => standard.recordSuccess(token),
  };
  if (mode !== 'adaptive') return uncapped as RetryStrategyV2;
  // Adaptive mode: the same, behind the SDK's client-side rate limiter, as its AdaptiveRetryStrategy
  // composes them (that class builds its own quota-bound strategy inside, so it is composed here).
  const limiter = new DefaultRateLimiter();
  return {
    acquireInitialRetryToken: async (scope: string) => {
      const token = await uncapped.acquireInitialRetryToken(scope);
      await limiter.getSendToken();
      return token;
    },
    refreshRetryTokenForRetry: async (token: StandardRetryToken, info: RetryErrorInfo) => {
      limiter.updateClientSendingRate(info);
      const next = await uncapped.refreshRetryTokenForRetry(token, info);
      await limiter.getSendToken();
      return next;
    },
    recordSuccess: (token: StandardRetryToken) => {
      limiter.updateClientSendingRate({});
      uncapped.recordSuccess(token);
    },
  } as RetryStrategyV2;
}
