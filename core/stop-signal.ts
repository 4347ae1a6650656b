// Stop signals for the hot path. An AbortSignal costs a few microseconds to create, and every
// request, upstream attempt and routing stage needs something to say "stop": a listener list does.

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
