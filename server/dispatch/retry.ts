// The one retry policy used for every upstream call: exponential backoff with jitter, honouring
// Retry-After, and never past the caller's deadline.
import { UpstreamError } from '../errors.ts';

export interface RetryPolicy {
  maxRetries: number;
  baseMs: number;
  maxMs: number;
}

/** Delay before retry number `retry` (0-based): retry-after if given, else min(base*2^n, max) minus up to 25% jitter. */
export function backoffDelay(policy: RetryPolicy, retry: number, err: UpstreamError | null, rng: () => number = Math.random): number {
  if (err?.retryAfterMs !== undefined) return err.retryAfterMs;
  const raw = Math.min(policy.baseMs * 2 ** retry, policy.maxMs);
  return Math.round(raw * (1 - 0.25 * rng()));
}

/**
 * The part of AbortSignal that requests and upstream calls use to be told to stop. An AbortSignal
 * is one; the hot path uses StopSignal (creating an AbortSignal costs a few microseconds).
 */
export interface ClientSignal {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** A ClientSignal that is a plain listener list; a real AbortSignal is made only if one is asked for. */
export class StopSignal implements ClientSignal {
  aborted = false;
  reason: unknown = undefined;
  private listeners: (() => void)[] = [];
  private controller: AbortController | null = null;

  /** Stops once; later calls do nothing. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.reason = reason;
    this.aborted = true;
    const listeners = this.listeners;
    this.listeners = [];
    for (const fn of listeners) fn();
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    if (!this.aborted) this.listeners.push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const i = this.listeners.indexOf(listener);
    if (i >= 0) this.listeners.splice(i, 1);
  }

  /** An AbortSignal that follows this one (for APIs that need the real thing, e.g. streaming requests). */
  toAbortSignal(): AbortSignal {
    if (!this.controller) {
      const controller = (this.controller = new AbortController());
      if (this.aborted) controller.abort(this.reason);
      else this.listeners.push(() => controller.abort(this.reason));
    }
    return this.controller.signal;
  }
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
  // A Retry-After longer than our longest backoff means: try another model instead.
  if (err.retryAfterMs !== undefined && err.retryAfterMs > policy.maxMs) return false;
  return delayMs < msLeft;
}
