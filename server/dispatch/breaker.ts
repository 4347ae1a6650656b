// Circuit breaker per model: closed -> open after N consecutive failures -> half-open after a
// cooldown, letting exactly one probe through; the probe's outcome closes or re-opens it.

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  failureThreshold: number;
  cooldownMs: number;
  now?: () => number;
}

export class CircuitBreaker {
  private failures = 0;
  private openedAt = 0;
  private probeInFlight = false;
  private current: BreakerState = 'closed';
  private readonly now: () => number;
  lastError: string | null = null;
  lastChange: number;

  constructor(private readonly opts: BreakerOptions) {
    this.now = opts.now ?? Date.now;
    this.lastChange = this.now();
  }

  /** The state, moving open -> half-open once the cooldown has passed. */
  get state(): BreakerState {
    if (this.current === 'open' && this.now() - this.openedAt >= this.opts.cooldownMs) this.transition('half-open');
    return this.current;
  }

  /** Closed or half-open: the router may pick this model. */
  get healthy(): boolean {
    return this.state !== 'open';
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  /** Ask to send one call. In half-open only one probe at a time is allowed. */
  tryAcquire(): boolean {
    const s = this.state;
    if (s === 'closed') return true;
    if (s === 'open') return false;
    if (this.probeInFlight) return false;
    this.probeInFlight = true;
    return true;
  }

  onSuccess(): void {
    this.failures = 0;
    this.probeInFlight = false;
    this.lastError = null;
    if (this.current !== 'closed') this.transition('closed');
  }

  onFailure(reason: string): void {
    this.lastError = reason;
    this.probeInFlight = false;
    this.failures++;
    if (this.current === 'half-open' || (this.current === 'closed' && this.failures >= this.opts.failureThreshold)) {
      this.openedAt = this.now();
      this.transition('open');
    }
  }

  /** A call that was acquired but neither succeeded nor failed (e.g. the client went away). */
  release(): void {
    this.probeInFlight = false;
  }

  private transition(to: BreakerState): void {
    this.current = to;
    this.lastChange = this.now();
  }
}
