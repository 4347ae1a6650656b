// Circuit breaker per model: closed -> open after N consecutive failures -> half-open after a
// cooldown, letting exactly one probe through; the probe's outcome closes or re-opens it.

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  failureThreshold: number;
  cooldownMs: number;
  now?: () => number;
}

/** Proof of an acquired call; only the half-open probe's own ticket can free the probe slot. */
export interface BreakerTicket {
  readonly probe: boolean;
}

const ORDINARY: BreakerTicket = Object.freeze({ probe: false });

export class CircuitBreaker {
  private failures = 0;
  private openedAt = 0;
  private probe: BreakerTicket | null = null;
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

  /** Milliseconds until an open breaker lets a probe through (0 when not open). */
  retryInMs(): number {
    return this.state === 'open' ? Math.max(0, this.opts.cooldownMs - (this.now() - this.openedAt)) : 0;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  /** Ask to send one call: a ticket, or null. In half-open only one probe at a time gets one. */
  tryAcquire(): BreakerTicket | null {
    const s = this.state;
    if (s === 'closed') return ORDINARY;
    if (s === 'open' || this.probe) return null;
    this.probe = { probe: true };
    return this.probe;
  }

  onSuccess(_ticket?: BreakerTicket): void {
    this.failures = 0;
    this.probe = null;
    this.lastError = null;
    if (this.current !== 'closed') this.transition('closed');
  }

  /**
   * A failed call. The half-open probe's failure re-opens the breaker; a call that was let
   * through before (while closed) only counts, and cannot free the probe slot of another call.
   */
  onFailure(reason: string, ticket?: BreakerTicket): void {
    this.lastError = reason;
    this.failures++;
    const isProbe = ticket === undefined ? this.probe !== null : ticket === this.probe;
    if (isProbe) this.probe = null;
    if ((this.current === 'half-open' && isProbe) || (this.current === 'closed' && this.failures >= this.opts.failureThreshold)) {
      this.openedAt = this.now();
      this.transition('open');
    }
  }

  /** A call that was acquired but neither succeeded nor failed (e.g. the client went away). */
  release(ticket?: BreakerTicket): void {
    if (ticket === undefined || ticket === this.probe) this.probe = null;
  }

  private transition(to: BreakerState): void {
    this.current = to;
    this.lastChange = this.now();
  }
}
