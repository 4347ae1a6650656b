// Limits guessing: failed credentials (wrong proxy keys, admin tokens, admin logins) are counted per
// client address; past AUTH_FAILURE_LIMIT within AUTH_FAILURE_WINDOW_MS that address is refused
// (429) before any credential it sends is checked, right or wrong, until old failures age out.
import { ApiError } from '../errors.ts';

export class FailureLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(private readonly opts: { limit: number; windowMs: number; now?: () => number; maxAddresses?: number }) {}

  private get now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** Seconds until `who` may try again; 0 when it is not blocked. */
  retryAfterS(who: string): number {
    const recent = this.recent(who);
    if (recent.length < this.opts.limit) return 0;
    const frees = recent[recent.length - this.opts.limit]! + this.opts.windowMs;
    return Math.max(1, Math.ceil((frees - this.now) / 1000));
  }

  blocked(who: string): boolean {
    return this.retryAfterS(who) > 0;
  }

  fail(who: string): void {
    const list = this.recent(who);
    list.push(this.now);
    // Only the last `limit` failures decide; older ones need not be kept.
    if (list.length > this.opts.limit) list.splice(0, list.length - this.opts.limit);
    this.failures.delete(who); // re-insert: the map's order is least recently failed first
    this.failures.set(who, list);
    if (this.failures.size > (this.opts.maxAddresses ?? 100_000)) this.failures.delete(this.failures.keys().next().value!);
  }

  clear(who: string): void {
    this.failures.delete(who);
  }

  /** The 429 for a blocked address, or null when it may try. */
  refusal(who: string): ApiError | null {
    const waitS = this.retryAfterS(who);
    if (waitS === 0) return null;
    return new ApiError(429, `Too many failed credentials from this address: try again in ${waitS} s (AUTH_FAILURE_LIMIT failures per AUTH_FAILURE_WINDOW_MS)`, 'rate_limit_error', 'too_many_auth_failures', null, undefined, { 'retry-after': String(waitS) });
  }

  private recent(who: string): number[] {
    const cutoff = this.now - this.opts.windowMs;
    return (this.failures.get(who) ?? []).filter((t) => t > cutoff);
  }
}
