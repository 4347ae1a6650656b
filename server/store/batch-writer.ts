// An in-memory queue written in batches by one writer at a time: a timer or a full queue starts a
// batch; a failed batch stays queued and is retried with backoff; flush() awaits durability.

import type { Log } from '../../core/log.ts';

export interface BatchWriterOptions<T> {
  flushMs: number;
  maxBatch: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Write all items atomically (one transaction); throw to reject the whole batch. */
  write(items: T[]): Promise<void>;
  /** True when `err` means this data can never be written (not "the database is unwell now"). */
  isPermanent(err: unknown): boolean;
  /** Called for an item dropped because it can never be written. */
  onDropped(item: T, err: unknown): void;
  /** Called once items are committed (or dropped), in queue order. */
  onDurable?(items: T[]): void;
  logger?: Log;
}

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

const errorFields = (err: unknown): Record<string, unknown> => ({
  code: (err as { code?: unknown } | null)?.code ?? null,
  error: err instanceof Error ? err.message : String(err),
});

export class BatchWriter<T> {
  private queue: { seq: number; item: T }[] = [];
  private inflight: { seq: number; item: T }[] = [];
  private enqueuedSeq = 0;
  private durableSeq = 0;
  private waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private failures = 0;
  private lastError: string | null = null;
  private writing = false;
  private draining: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly opts: BatchWriterOptions<T>) {}

  /** Enqueue without any I/O on the caller's path. */
  push(item: T): void {
    if (this.stopped) throw new Error('batch writer is stopped');
    this.queue.push({ seq: ++this.enqueuedSeq, item });
    if (this.writing || this.retryTimer) return; // the running drain or the retry picks it up
    if (this.queue.length >= this.opts.maxBatch) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => this.startDrain(), 0);
    } else if (!this.timer) {
      // Not unref'd: a process that only recorded something still lives until it is written.
      this.timer = setTimeout(() => this.startDrain(), this.opts.flushMs);
    }
  }

  /** Items not yet durable: the batch being written, then the queue, oldest first. */
  items(): T[] {
    return [...this.inflight, ...this.queue].map((e) => e.item);
  }

  pending(): number {
    return this.inflight.length + this.queue.length;
  }

  /** Why the last batch failed while records still wait for a retry; null when writes succeed. */
  writeError(): string | null {
    return this.failures > 0 ? this.lastError : null;
  }

  /** Resolves when everything pushed before this call is committed (or dropped as unwritable). */
  flush(): Promise<void> {
    const seq = this.enqueuedSeq;
    if (this.durableSeq >= seq) return Promise.resolve();
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ seq, resolve, reject }));
    this.startDrain();
    return done;
  }

  /** Flush, waiting at most `timeoutMs`; then stop for good. Rejects if records were left unwritten. */
  async close(timeoutMs: number): Promise<void> {
    let timeout: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<'timeout'>((resolve) => {
      timeout = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const outcome = await Promise.race([this.flush(), gaveUp]);
    clearTimeout(timeout);
    this.stopped = true;
    await this.draining;
    if (this.timer) clearTimeout(this.timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.timer = this.retryTimer = null;
    const failure = outcome === 'timeout' ? new Error(`closed with ${this.pending()} records not written`) : null;
    for (const w of this.waiters) w.reject(failure ?? new Error('batch writer closed'));
    this.waiters = [];
    if (failure) {
      this.opts.logger?.('error', 'store close timed out; records not written', { pending: this.pending() });
      throw failure;
    }
  }

  private startDrain(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.writing || this.retryTimer || this.stopped || this.queue.length === 0) return;
    this.draining = this.drain();
  }

  /** Writes batches until the queue is empty or a batch fails. Only one drain runs at a time. */
  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0 && !this.stopped) {
        // Taken synchronously: whatever arrives while this batch is written goes in the next one.
        const batch = this.queue.splice(0, this.opts.maxBatch);
        this.inflight = batch;
        const started = Date.now();
        const { consumed, error } = await this.writeBatch(batch.map((e) => e.item));
        this.inflight = [];
        if (consumed > 0) this.markDurable(batch.slice(0, consumed));
        if (error !== null) {
          this.queue.unshift(...batch.slice(consumed));
          if (!this.stopped) this.scheduleRetry(error);
          return;
        }
        this.failures = 0;
        this.lastError = null;
        this.opts.logger?.('debug', 'store batch written', { records: batch.length, ms: Date.now() - started });
      }
    } finally {
      this.writing = false;
    }
  }

  /**
   * One transaction for the batch. If a record can never be written, the batch is replayed one
   * record per transaction so only that record is dropped. Any other failure returns how many
   * leading records were written and the error; the rest stay queued.
   */
  private async writeBatch(items: T[]): Promise<{ consumed: number; error: unknown }> {
    try {
      await this.opts.write(items);
      return { consumed: items.length, error: null };
    } catch (err) {
      if (!this.opts.isPermanent(err)) return { consumed: 0, error: err };
    }
    for (let i = 0; i < items.length; i++) {
      try {
        await this.opts.write([items[i]!]);
      } catch (err) {
        if (!this.opts.isPermanent(err)) return { consumed: i, error: err };
        this.opts.onDropped(items[i]!, err);
      }
    }
    return { consumed: items.length, error: null };
  }

  private markDurable(entries: { seq: number; item: T }[]): void {
    this.opts.onDurable?.(entries.map((e) => e.item));
    this.durableSeq = entries[entries.length - 1]!.seq;
    const ready = this.waiters.filter((w) => w.seq <= this.durableSeq);
    this.waiters = this.waiters.filter((w) => w.seq > this.durableSeq);
    for (const w of ready) w.resolve();
  }

  private scheduleRetry(err: unknown): void {
    this.failures += 1;
    this.lastError = String(errorFields(err).error);
    const delay = Math.min(this.opts.retryBaseMs * 2 ** (this.failures - 1), this.opts.retryMaxMs);
    this.opts.logger?.('error', 'store batch failed; kept queued, will retry', {
      ...errorFields(err), pending: this.pending(), attempt: this.failures, retryInMs: delay,
    });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.startDrain();
    }, delay);
  }
}
