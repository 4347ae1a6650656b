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

/** An open or close decided here, for other instances to adopt (half-open is each instance's own). */
export interface BreakerChange {
  state: 'open' | 'closed';
  /** When it changed (ms since the epoch). */
  at: number;
  reason: string | null;
}

export class CircuitBreaker {
  private failures = 0;
  private openedAt = 0;
  private probe: BreakerTicket | null = null;
  private current: BreakerState = 'closed';
  /** When the last open or close was decided, here or adopted (0: never). */
  private decidedAt = 0;
  private readonly now: () => number;
  lastError: string | null = null;
  lastChange: number;
  /** Told of every open and close this breaker decides itself (not of ones adopted by adopt()). */
  onChange: ((change: BreakerChange) => void) | null = null;

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

  /**
   * Another instance's decision: opened (its cooldown counted from `at`) or closed. Ignored when
   * this breaker changed since (the later decision wins). A probe in flight keeps its ticket;
   * its outcome is a new decision.
   */
  adopt(change: BreakerChange): void {
    if (change.at <= this.decidedAt) return;
    this.decidedAt = change.at;
    if (change.state === 'open') {
      this.openedAt = change.at;
      this.failures = Math.max(this.failures, this.opts.failureThreshold);
      if (change.reason) this.lastError = change.reason;
      this.current = 'open';
      this.lastChange = change.at;
      return;
    }
    if (this.current === 'closed') return;
    this.failures = 0;
    this.lastError = null;
    this.current = 'closed';
    this.lastChange = change.at;
  }

  /** The last open or close decided here or adopted, to share again after an outage (null: none). */
  lastDecision(): BreakerChange | null {
    if (this.decidedAt === 0) return null;
    return { state: this.current === 'closed' ? 'closed' : 'open', at: this.decidedAt, reason: this.current === 'closed' ? null : this.lastError };
  }

  private transition(to: BreakerState): void {
    this.current = to;
    this.lastChange = this.now();
    if (to === 'half-open') return;
    this.decidedAt = this.lastChange;
    this.onChange?.({ state: to, at: this.lastChange, reason: this.lastError });
  }
}
