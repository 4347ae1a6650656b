// Sends a request to the router's candidates in order: per-attempt timeouts, retries with backoff,
// a circuit breaker and a concurrency cap per model, fallback to the next candidate. Streams fall
// back only until their first part has arrived; after that a failure ends the stream with an error.
import { UpstreamError } from '../errors.ts';
import type { ProviderRequest, ProviderResult, StreamPart, Usage } from '../providers/types.ts';
import type { ModelCallRecord } from '../store/types.ts';
import type { ModelRegistry, ModelRuntime } from './registry.ts';
import type { BreakerTicket } from './breaker.ts';
import { backoffDelay, shouldRetry, sleep, type RetryPolicy } from './retry.ts';
import { StopSignal, type ClientSignal } from '../stop-signal.ts';

export type Attempt = Omit<ModelCallRecord, 'requestId'>;

export interface DispatchContext {
  requestId: string;
  /** Aborts when the client goes away. */
  signal: ClientSignal;
  /** Epoch ms after which no new attempt starts. */
  deadline: number;
}

export interface DispatchOptions {
  policy: RetryPolicy;
  attemptTimeoutMs: number;
  rng?: () => number;
  now?: () => number;
}

/** Every candidate failed or was skipped. */
export class DispatchError extends Error {
  constructor(
    message: string,
    readonly attempts: Attempt[],
    /**
     * Suggested client status: the upstream's own for a request it refused (400, 404, 413, 422) or a
     * rate limit (429); 503 when nothing could be tried, 504 when the last failure was a timeout, else 502.
     */
    readonly status: number,
    readonly clientAborted = false,
    /** When to try again (429 from the upstream, 503 for open breakers). */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'DispatchError';
  }
}

export interface ChatOutcome {
  model: string;
  result: ProviderResult;
  attempts: Attempt[];
}

export interface StreamOutcome {
  model: string;
  attempts: Attempt[];
  /** All parts, starting with the first one already received. Throws UpstreamError mid-way on failure. */
  parts: AsyncGenerator<StreamPart>;
}

const timeoutReason = (ms: number) => new DOMException(`upstream did not answer within ${ms} ms`, 'TimeoutError');

/** Cache reads and writes as a share of the input price, where the config names no price (the providers' list prices). */
const cacheShare: Record<string, { read: number; write: number }> = { anthropic: { read: 0.1, write: 1.25 }, openai: { read: 0.5, write: 1 }, gemini: { read: 0.25, write: 1 } };

export function costOf(rt: ModelRuntime, usage: Usage): number {
  const s = rt.spec;
  const read = usage.cacheReadTokens ?? 0;
  const write = usage.cacheWriteTokens ?? 0;
  const share = cacheShare[s.provider] ?? { read: 1, write: 1 };
  const fresh = Math.max(0, usage.inputTokens - read - write);
  return (fresh * s.costPer1kInput + read * (s.costPer1kCacheRead ?? s.costPer1kInput * share.read) + write * (s.costPer1kCacheWrite ?? s.costPer1kInput * share.write) + usage.outputTokens * s.costPer1kOutput) / 1000;
}

/** Upstream statuses that say the request itself is wrong: passed to the client as they are, never retried or tried elsewhere. */
const CLIENT_ERRORS = new Set([400, 404, 413, 422]);

export function isClientError(err: unknown): err is UpstreamError {
  return err instanceof UpstreamError && err.code === 'http' && CLIENT_ERRORS.has(err.status);
}

/**
 * Errors that say the model itself is unwell trip the breaker. Not a bad request, and not a 429:
 * a rate limit is the upstream pacing callers (often one busy client), not a broken model.
 */
function countsAgainstModel(err: unknown): boolean {
  if (!(err instanceof UpstreamError)) return true;
  if (err.status === 429) return false;
  return err.retryable || err.status === 401 || err.status === 403 || err.code === 'bad_response';
}

function describe(err: unknown): string {
  if (err instanceof UpstreamError) return err.status ? `${err.code} ${err.status}: ${err.message}` : `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

export class Dispatcher {
  private readonly rng: () => number;
  private readonly now: () => number;

  constructor(private readonly registry: ModelRegistry, private readonly opts: DispatchOptions) {
    this.rng = opts.rng ?? Math.random;
    this.now = opts.now ?? Date.now;
  }

  chat(candidates: string[], req: ProviderRequest, ctx: DispatchContext): Promise<ChatOutcome> {
    return this.run(candidates, ctx, async (rt, timer, attempts, started) => {
      const result = await rt.provider.chat(rt.endpoint, req, timer);
      attempts.push(this.okAttempt(rt, attempts, started, result.usage));
      return { model: rt.spec.id, result, attempts };
    });
  }

  stream(candidates: string[], req: ProviderRequest, ctx: DispatchContext): Promise<StreamOutcome> {
    return this.run(candidates, ctx, async (rt, timer, attempts, started, ticket) => {
      // Once content flows, any upstream bytes (pings, role frames) count as life for the idle
      // timeout; the first content part itself must still arrive within the attempt timeout.
      const iterator = rt.provider.stream(rt.endpoint, req, timer.toAbortSignal(), { onActivity: () => timer.handedOver && timer.touch() })[Symbol.asyncIterator]();
      const first = await iterator.next();
      // From here on the caller owns the stream: the idle timer keeps guarding it chunk by chunk.
      timer.handOver();
      const self = this;
      const attemptNo = attempts.length + 1;
      async function* parts(): AsyncGenerator<StreamPart> {
        let usage: Usage = { inputTokens: 0, outputTokens: 0 };
        let ok = false;
        let settled = false;
        try {
          if (!first.done) {
            timer.touch();
            if (first.value.type === 'finish' && first.value.usage) usage = first.value.usage;
            yield first.value;
          }
          for (;;) {
            const next = await iterator.next();
            if (next.done) break;
            timer.touch();
            if (next.value.type === 'finish' && next.value.usage) usage = next.value.usage;
            yield next.value;
          }
          ok = true;
          rt.breaker.onSuccess(ticket);
          attempts.push({ ...self.okAttempt(rt, attempts, started, usage), attempt: attemptNo });
        } catch (err) {
          const e = timer.translate(err);
          if (!ctx.signal.aborted && countsAgainstModel(e)) rt.breaker.onFailure(describe(e), ticket);
          else rt.breaker.release(ticket);
          settled = true;
          attempts.push(self.failedAttempt(rt, attemptNo, started, e));
          throw e;
        } finally {
          // Stopped early by the consumer: neither success nor failure, but the slot is free again.
          if (!ok && !settled) rt.breaker.release(ticket);
          timer.clear();
          rt.inflight--;
          if (!ok) await iterator.return?.(undefined).catch(() => undefined);
        }
      }
      return { model: rt.spec.id, attempts, parts: parts() };
    });
  }

  /**
   * A call that is not a chat answer (embeddings, token counts) with the same retries, timeouts,
   * breaker and concurrency cap; `usage` reads the tokens the answer cost from its value.
   */
  unary<T>(candidates: string[], ctx: DispatchContext, call: (rt: ModelRuntime, signal: ClientSignal) => Promise<T>, usage: (value: T) => Usage): Promise<{ model: string; value: T; attempts: Attempt[] }> {
    return this.run(candidates, ctx, async (rt, timer, attempts, started) => {
      const value = await call(rt, timer);
      attempts.push(this.okAttempt(rt, attempts, started, usage(value)));
      return { model: rt.spec.id, value, attempts };
    });
  }

  /** The shared candidate / retry loop. `call` resolves with the outcome or throws. */
  private async run<T>(
    candidates: string[],
    ctx: DispatchContext,
    call: (rt: ModelRuntime, timer: AttemptTimer, attempts: Attempt[], started: number, ticket: BreakerTicket) => Promise<T>,
  ): Promise<T> {
    const attempts: Attempt[] = [];
    let lastErr: unknown = null;
    /** Shortest Retry-After among the 429s seen. */
    let rateLimitedFor: number | undefined;
    /** Soonest an open breaker among the candidates lets a call through. */
    let openFor: number | undefined;
    for (const id of candidates) {
      const rt = this.registry.get(id);
      const skip = this.skipReason(rt);
      if (typeof skip === 'string' || !rt) {
        if (rt && skip === 'circuit open') openFor = Math.min(openFor ?? Infinity, rt.breaker.retryInMs());
        attempts.push({ ts: this.now(), model: id, attempt: attempts.length + 1, status: 'skipped', httpStatus: null, latencyMs: 0, inputTokens: 0, outputTokens: 0, costUsd: 0, error: typeof skip === 'string' ? skip : 'unknown model' });
        continue;
      }
      // The first attempt's breaker ticket comes from skipReason(); later ones are asked for anew.
      let ticket: BreakerTicket | null = skip;
      for (let retry = 0; ; retry++) {
        if (ctx.signal.aborted) {
          if (ticket) rt.breaker.release(ticket);
          throw new DispatchError('client closed the request', attempts, 499, true);
        }
        const msLeft = ctx.deadline - this.now();
        if (msLeft <= 0) {
          if (ticket) rt.breaker.release(ticket);
          break;
        }
        if (retry > 0) ticket = rt.breaker.tryAcquire();
        if (!ticket) break;
        const held: BreakerTicket = ticket;
        ticket = null;
        const timeoutMs = Math.min(rt.spec.timeoutMs ?? this.opts.attemptTimeoutMs, msLeft);
        const timer = new AttemptTimer(timeoutMs, ctx.signal);
        const started = this.now();
        rt.inflight++;
        try {
          const out = await call(rt, timer, attempts, started, held);
          if (!timer.handedOver) {
            rt.breaker.onSuccess(held);
            rt.inflight--;
            timer.clear();
          }
          return out;
        } catch (raw) {
          timer.clear();
          rt.inflight--;
          const err = timer.translate(raw);
          lastErr = err;
          attempts.push(this.failedAttempt(rt, attempts.length + 1, started, err));
          if (ctx.signal.aborted) {
            rt.breaker.release(held);
            throw new DispatchError('client closed the request', attempts, 499, true);
          }
          if (countsAgainstModel(err)) rt.breaker.onFailure(describe(err), held);
          else rt.breaker.release(held);
          // The request is what the upstream refused: another model or another try would be refused too.
          if (isClientError(err)) throw new DispatchError(err.message, attempts, err.status);
          if (err instanceof UpstreamError && err.status === 429 && err.retryAfterMs !== undefined) {
            rateLimitedFor = rateLimitedFor === undefined ? err.retryAfterMs : Math.min(rateLimitedFor, err.retryAfterMs);
          }
          const delay = backoffDelay(this.opts.policy, retry, err instanceof UpstreamError ? err : null, this.rng);
          if (!shouldRetry(this.opts.policy, retry, err, delay, ctx.deadline - this.now())) break;
          try {
            await sleep(delay, ctx.signal);
          } catch {
            throw new DispatchError('client closed the request', attempts, 499, true);
          }
        }
      }
    }
    const tried = attempts.filter((a) => a.status !== 'skipped');
    const limited = lastErr instanceof UpstreamError && lastErr.status === 429;
    const status = tried.length === 0 ? 503 : limited ? 429 : lastErr instanceof UpstreamError && lastErr.code === 'timeout' ? 504 : 502;
    const summary = attempts.map((a) => `${a.model}#${a.attempt}: ${a.error ?? a.status}`).join('; ');
    const message = tried.length === 0 ? `no model could take the request (${summary})` : limited ? `the upstream is rate limiting requests (${summary})` : `all candidate models failed (${summary})`;
    const retryAfterMs = status === 429 ? rateLimitedFor : status === 503 && openFor !== undefined && openFor !== Infinity ? openFor : undefined;
    throw new DispatchError(message, attempts, status, false, retryAfterMs);
  }

  /** Why a model cannot take this request, or the breaker ticket for its first attempt. */
  private skipReason(rt: ModelRuntime | undefined): string | BreakerTicket {
    if (!rt) return 'unknown model';
    if (!rt.enabled) return 'model disabled';
    if (rt.inflight >= rt.maxConcurrent) return `concurrency limit (${rt.maxConcurrent}) reached`;
    return rt.breaker.tryAcquire() ?? 'circuit open';
  }

  private okAttempt(rt: ModelRuntime, attempts: Attempt[], started: number, usage: Usage): Attempt {
    return { ts: started, model: rt.spec.id, attempt: attempts.length + 1, status: 'ok', httpStatus: 200, latencyMs: this.now() - started, inputTokens: usage.inputTokens, outputTokens: usage.outputTokens, costUsd: costOf(rt, usage), error: null };
  }

  private failedAttempt(rt: ModelRuntime, attempt: number, started: number, err: unknown): Attempt {
    const status = err instanceof UpstreamError && err.code === 'timeout' ? 'timeout' : 'error';
    return { ts: started, model: rt.spec.id, attempt, status, httpStatus: err instanceof UpstreamError && err.status ? err.status : null, latencyMs: this.now() - started, inputTokens: 0, outputTokens: 0, costUsd: 0, error: describe(err).slice(0, 500) };
  }
}

/**
 * One attempt's stop signal: stops on client disconnect, or when no progress was seen for `ms`
 * (before the answer, or between stream chunks once handed over). A StopSignal, not an
 * AbortSignal: JSON calls only need the listener list; streams ask for a real one.
 */
class AttemptTimer extends StopSignal {
  private timer: NodeJS.Timeout | null = null;
  private readonly onClientAbort: () => void;
  handedOver = false;
  timedOut = false;

  constructor(private readonly ms: number, private readonly client: ClientSignal) {
    super();
    this.onClientAbort = () => this.abort(client.reason ?? new DOMException('client closed the request', 'AbortError'));
    if (client.aborted) this.onClientAbort();
    else client.addEventListener('abort', this.onClientAbort, { once: true });
    this.arm();
  }

  handOver(): void {
    this.handedOver = true;
  }

  /** Progress seen: restart the idle clock. */
  touch(): void {
    this.arm();
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.client.removeEventListener('abort', this.onClientAbort);
  }

  /** Adapters may surface our own timeout abort in several ways; make it one UpstreamError. */
  translate(err: unknown): unknown {
    if (this.timedOut && !(err instanceof UpstreamError && err.code === 'timeout')) {
      return new UpstreamError('dispatch', 'timeout', `upstream did not answer within ${this.ms} ms`);
    }
    return err;
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.abort(timeoutReason(this.ms));
    }, this.ms);
    this.timer.unref?.();
  }
}
