// The one retry policy used for every upstream call: exponential backoff with jitter, honouring
// Retry-After, and never past the caller's deadline.
import { UpstreamError } from '../errors.ts';
import type { ClientSignal } from '../stop-signal.ts';

export interface RetryPolicy {
  maxRetries: number;
  baseMs: number;
  maxMs: number;
  /** Longest Retry-After waited out before retrying the same model (default: maxMs). */
  maxRetryAfterMs?: number;
}

/** Delay before retry number `retry` (0-based): retry-after if given, else min(base*2^n, max) minus up to 25% jitter. */
export function backoffDelay(policy: RetryPolicy, retry: number, err: UpstreamError | null, rng: () => number = Math.random): number {
  if (err?.retryAfterMs !== undefined) return err.retryAfterMs;
  const raw = Math.min(policy.baseMs * 2 ** retry, policy.maxMs);
  return Math.round(raw * (1 - 0.25 * rng()));
}

/** Sleep that ends early (rejecting) when the signal aborts. */

export function sleep(ms: number, signal?: ClientSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Whether to retry `err` after `retry` retries, given the time left before the deadline. */
export function shouldRetry(policy: RetryPolicy, retry: number, err: unknown, delayMs: number, msLeft: number): boolean {
  if (!(err instanceof UpstreamError) || !err.retryable) return false;
  if (retry >= policy.maxRetries) return false;
  // A long Retry-After means: try another model instead, or tell the client when to come back.
  if (err.retryAfterMs !== undefined && err.retryAfterMs > (policy.maxRetryAfterMs ?? policy.maxMs)) return false;
  return delayMs < msLeft;
}
