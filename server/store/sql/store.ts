// What both SQL stores do alike: the write-behind queue (records enqueue, one writer commits them in
// batches), queued requests visible to reads before their commit, and every read and direct write
// of the contract over the shared SQL. An engine supplies its connections, its batch statements and
// which of its errors mean "this record can never be written".
import type { RoutingDecision } from '../../../core/routing.ts';
import type { Log } from '../../../core/log.ts';
import { BatchWriter } from '../batch-writer.ts';
import { boundedRequest, checkedFeedback, requestItem, storedFromItem, type QueueItem, type RequestItem } from '../records.ts';
import type {
  FeedbackRecord, IndexSnapshotFile, LearnedVersionWrite, LearnerRunKind, LearnerRunResult, ModelCallRecord, RequestCursor,
  RequestFilter, RequestRecord, ShadowComparison, Store, StoredRequest,
} from '../types.ts';
import * as q from './queries.ts';
import * as w from './writes.ts';

export interface QueueOptions {
  /** How long a record may wait before its batch is written. */
  flushMs: number;
  /** A queue this long is written at once; also the most records per transaction. */
  maxBatch: number;
  /** Backoff after a failed batch: retryBaseMs * 2^n, capped at retryMaxMs. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** close() gives up waiting for the queue to drain after this long, and rejects. */
  closeTimeoutMs: number;
  now: () => number;
  logger?: Log;
}

export abstract class SqlStore implements Store {
  abstract readonly engine: Store['engine'];
  abstract readonly indexSnapshots: Store['indexSnapshots'];
  private readonly writer: BatchWriter<QueueItem>;
  /** Request ids queued or being written, so requestExists/getRequest see them before the commit. */
  private readonly queued = new Map<string, RequestItem>();
  private closing: Promise<void> | null = null;

  constructor(protected readonly reader: q.SqlReader, protected readonly opts: QueueOptions) {
    this.writer = new BatchWriter<QueueItem>({
      ...opts,
      write: (items) => this.writeBatchTransaction(items),
      isPermanent: (err) => this.isRefusal(err),
      onDropped: (item, err) => opts.logger?.('error', 'store dropped a record the database refused', {
        kind: item.kind, requestId: item.kind === 'request' ? item.id : item.fb.requestId,
        code: (err as { code?: unknown } | null)?.code ?? null, error: err instanceof Error ? err.message : String(err),
      }),
      onDurable: (items) => {
        for (const item of items) {
          if (item.kind === 'request' && this.queued.get(item.id) === item) this.queued.delete(item.id);
        }
      },
    });
  }

  /** Write the batch in one transaction; returns the request ids that were already stored. */
  protected abstract writeItems(items: QueueItem[], now: number): Promise<string[]>;
  /** Run `fn` in one transaction on the write side. */
  protected abstract tx<T>(fn: (tx: w.SqlTx) => Promise<T>): Promise<T>;
  /** True when `err` means the record can never be written (not "the database is unwell now"). */
  protected abstract isRefusal(err: unknown): boolean;
  /** Close the connections once the queue is written (or given up on). */
  protected abstract closeConnections(): Promise<void>;

  abstract saveIndexSnapshot(version: number, files: IndexSnapshotFile[]): Promise<void>;
  abstract loadIndexSnapshot(version: number): Promise<IndexSnapshotFile[] | null>;

  private async writeBatchTransaction(items: QueueItem[]): Promise<void> {
    const duplicates = await this.writeItems(items, this.opts.now());
    for (const requestId of duplicates) this.opts.logger?.('warn', 'store ignored a request id already recorded', { requestId });
  }

  // ---- queue ----------------------------------------------------------------------------------

  recordRequest(req: RequestRecord, decision: RoutingDecision | null, calls: ModelCallRecord[]): void {
    const item = requestItem(boundedRequest(req), decision, calls);
    if (this.enqueue(item)) this.queued.set(req.id, item);
  }

  recordFeedback(fb: FeedbackRecord): void {
    this.enqueue({ kind: 'feedback', fb: checkedFeedback(fb) });
  }

  private enqueue(item: QueueItem): boolean {
    if (this.closing) {
      this.opts.logger?.('error', 'store is closed; record dropped', { kind: item.kind });
      return false;
    }
    this.writer.push(item);
    return true;
  }

  pending(): number {
    return this.writer.pending();
  }

  writeError(): string | null {
    return this.writer.writeError();
  }

  flush(): Promise<void> {
    return this.writer.flush();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.writer.close(this.opts.closeTimeoutMs);
      } finally {
        await this.closeConnections();
      }
    })();
    return this.closing;
  }

  // ---- reads ----------------------------------------------------------------------------------

  async requestExists(id: string): Promise<boolean> {
    return this.queued.has(id) || q.requestExists(this.reader, id);
  }

  async getRequest(id: string): Promise<StoredRequest | null> {
    const item = this.queued.get(id);
    if (!item) return q.getRequest(this.reader, id);
    const feedback = this.writer.items()
      .flatMap((i) => (i.kind === 'feedback' && i.fb.requestId === id ? [i.fb] : []));
    return { ...storedFromItem(item), feedback };
  }

  listRequests = (filter: RequestFilter) => q.listRequests(this.reader, filter);
  countRequests = () => q.countRequests(this.reader);
  getWeights = () => q.getWeights(this.reader);
  performance = () => q.performance(this.reader);
  trainingRows = (sinceTs: number, limit: number, feedbackUntilTs?: number) => q.trainingRows(this.reader, sinceTs, limit, feedbackUntilTs);
  lateFeedbackRows = (afterTs: number, untilTs: number, rowsUntilTs: number) => q.lateFeedbackRows(this.reader, afterTs, untilTs, rowsUntilTs);
  countAnswered = (fromTs: number, untilTs: number) => q.countAnswered(this.reader, fromTs, untilTs);
  outputTokens = (fromTs: number, untilTs: number) => q.outputTokens(this.reader, fromTs, untilTs);
  nthNewestAnsweredTs = (untilTs: number, n: number) => q.nthNewestAnsweredTs(this.reader, untilTs, n);
  getState = <T>(key: string) => q.getState<T>(this.reader, key);
  stats = (sinceTs: number) => q.stats(this.reader, sinceTs);
  timeSeries = (bucketMs: number, sinceTs: number) => q.timeSeries(this.reader, bucketMs, sinceTs);
  countSince = (sinceTs: number) => q.countSince(this.reader, sinceTs);
  latestRequest = () => q.latestRequest(this.reader);
  nextUnrated = (before?: RequestCursor | null) => q.nextUnrated(this.reader, before);
  unratedSince = (sinceTs: number) => q.unratedSince(this.reader, sinceTs);
  seenCells = () => q.seenCells(this.reader);
  learnerRuns = (limit = 50, kind?: LearnerRunKind) => q.learnerRuns(this.reader, limit, kind);
  learnerRunTotals = () => q.learnerRunTotals(this.reader);
  readPriors = (version?: number) => q.readPriors(this.reader, version);
  decisionLog = (after: RequestCursor, limit: number) => q.decisionLog(this.reader, after, limit);
  shadowCandidates = (after: RequestCursor, untilTs: number, limit: number) => q.shadowCandidates(this.reader, after, untilTs, limit);
  shadowComparisons = (limit: number) => q.shadowComparisons(this.reader, limit);
  shadowSpend = (sinceTs: number) => q.shadowSpend(this.reader, sinceTs);

  // ---- direct writes, each one transaction ----------------------------------------------------

  async setWeights(weights: { model: string; weight?: number; enabled?: boolean }[]): Promise<void> {
    w.checkWeights(weights);
    const now = this.opts.now();
    await this.tx((tx) => w.upsertWeights(tx, weights, now));
  }

  async setState(key: string, value: unknown): Promise<void> {
    w.stateJson(key, value);
    await this.tx((tx) => w.upsertState(tx, key, value, this.opts.now()));
  }

  startLearnerRun(startedAt: number = this.opts.now(), kind: LearnerRunKind = 'learn'): Promise<number> {
    return this.tx((tx) => w.startLearnerRun(tx, startedAt, kind));
  }

  async finishLearnerRun(id: number, r: LearnerRunResult): Promise<void> {
    await this.tx((tx) => w.finishLearnerRun(tx, id, r, this.opts.now()));
  }

  async recordShadowComparison(c: ShadowComparison): Promise<void> {
    await this.tx((tx) => w.insertShadowComparison(tx, c));
  }

  /** Write-then-swap: readers keep the old version until the pointers move, in the same transaction. */
  async commitLearnedVersion(write: LearnedVersionWrite): Promise<void> {
    await this.tx((tx) => w.commitLearnedVersion(tx, write, this.opts.now()));
  }

  pruneLearnedVersions(oldestKept: number, current: number): Promise<number[]> {
    return this.tx((tx) => w.pruneLearnedVersions(tx, oldestKept, current));
  }
}
