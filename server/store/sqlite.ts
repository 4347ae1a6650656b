// SQLite implementation of Store: records are queued in memory and written by one batched writer
// (one transaction per batch, retried with backoff on failure); reads use a second WAL connection.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { RoutingDecision } from '../../router/types.ts';
import { BatchWriter, type StoreLogger, type StoreLogLevel } from './batch-writer.ts';
import { BatchSql, MAX_ERROR_CHARS, requestItem, storedFromItem, truncateOrNull, type QueueItem, type RequestItem } from './batch-sql.ts';
import { Db, sqliteCode } from './db.ts';
import { migrate } from './migrations.ts';
import * as q from './queries.ts';
import type {
  FeedbackRecord, LearnerRunKind, LearnerRunResult, ModelCallRecord, PriorRow, RequestRecord, ShadowComparison, Store, StoredRequest,
} from './types.ts';

export type { StoreLogger, StoreLogLevel };

export interface SqliteStoreOptions {
  /** Database file; ':memory:' for a private in-memory database (one connection). */
  path: string;
  /** How long a record may wait before its batch is written. Default 50. */
  flushMs?: number;
  /** A queue this long is written at once; also the most records per transaction. Default 4000. */
  maxBatch?: number;
  logger?: StoreLogger;
  /** PRAGMA busy_timeout for both connections. Default 5000. */
  busyTimeoutMs?: number;
  /** Backoff after a failed batch: retryBaseMs * 2^n, capped at retryMaxMs. Defaults 100 / 5000. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** close() gives up waiting for the queue to drain after this long, and rejects. Default 30000. */
  closeTimeoutMs?: number;
  now?: () => number;
}

type OptionalStoreMethods = 'stats' | 'timeSeries' | 'runBatch' | 'startLearnerRun' | 'finishLearnerRun'
  | 'learnerRuns' | 'writePriors' | 'readPriors' | 'decisionLog' | 'shadowCandidates' | 'recordShadowComparison'
  | 'shadowComparisons' | 'shadowSpend';

export type SqliteStore = Store & Required<Pick<Store, OptionalStoreMethods>> & { readonly path: string };

export const MAX_QUERY_CHARS = 20_000;
export const MAX_ANSWER_CHARS = 50_000;
const MAX_COMMENT_CHARS = 5_000;

const truncate = (s: string, max: number): string => (s.length > max ? s.slice(0, max) : s);

/** Codes that say "this record can never be written", as opposed to "the database is unwell now". */
const REFUSED_CODES = new Set(['SQLITE_CONSTRAINT', 'SQLITE_MISMATCH', 'SQLITE_TOOBIG', 'SQLITE_RANGE']);
const isRefusal = (err: unknown): boolean => {
  const code = sqliteCode(err);
  return code === null || REFUSED_CODES.has(code); // non-SQLite errors come from our own encoding
};

/** Page cache per connection; admin scans over a large history read mostly through the reader. */
const READER_CACHE_MB = 64;
const WRITER_CACHE_MB = 16;

type ResolvedOptions = Required<Omit<SqliteStoreOptions, 'logger' | 'path'>> & { logger?: StoreLogger };

class SqliteStoreImpl implements SqliteStore {
  private readonly writer: BatchWriter<QueueItem>;
  /** Request ids queued or being written, so requestExists/getRequest see them before the commit. */
  private readonly queued = new Map<string, RequestItem>();
  private closing: Promise<void> | null = null;

  constructor(
    readonly path: string,
    private readonly wdb: Db,
    private readonly rdb: Db,
    private readonly batchSql: BatchSql,
    private readonly opts: ResolvedOptions,
  ) {
    this.writer = new BatchWriter<QueueItem>({
      ...opts,
      write: (items) => this.writeTransaction(items),
      isPermanent: isRefusal,
      onDropped: (item, err) => opts.logger?.('error', 'store dropped a record SQLite refused', {
        kind: item.kind, requestId: item.kind === 'request' ? item.id : item.fb.requestId,
        code: sqliteCode(err), error: err instanceof Error ? err.message : String(err),
      }),
      onDurable: (items) => {
        for (const item of items) {
          if (item.kind === 'request' && this.queued.get(item.id) === item) this.queued.delete(item.id);
        }
      },
    });
  }

  // ---- queue ----------------------------------------------------------------------------------

  recordRequest(req: RequestRecord, decision: RoutingDecision | null, calls: ModelCallRecord[]): void {
    const record: RequestRecord = {
      ...req,
      queryText: truncate(req.queryText, MAX_QUERY_CHARS),
      answer: truncateOrNull(req.answer, MAX_ANSWER_CHARS),
      error: truncateOrNull(req.error, MAX_ERROR_CHARS),
    };
    const item = requestItem(record, decision, calls);
    if (this.enqueue(item)) this.queued.set(req.id, item);
  }

  recordFeedback(fb: FeedbackRecord): void {
    // People rate in whole stars; the offline harness may give a continuous score in the same range.
    const valid = fb.source === 'eval' ? Number.isFinite(fb.rating) : Number.isInteger(fb.rating);
    if (!['user', 'admin', 'implicit', 'eval', 'shadow'].includes(fb.source)) throw new RangeError(`unknown feedback source ${String(fb.source)}`);
    if (!valid || fb.rating < 1 || fb.rating > 5) {
      throw new RangeError(`rating must be ${fb.source === 'eval' ? 'a number' : 'an integer'} from 1 to 5, got ${fb.rating}`);
    }
    this.enqueue({ kind: 'feedback', fb: { ...fb, comment: truncateOrNull(fb.comment, MAX_COMMENT_CHARS) } });
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
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    try {
      await this.writer.close(this.opts.closeTimeoutMs);
    } finally {
      await this.batchSql.finalize();
      if (this.rdb !== this.wdb) await this.rdb.close();
      await this.wdb.close();
    }
  }

  private writeTransaction(items: QueueItem[]): Promise<void> {
    return this.wdb.transaction(async () => {
      const duplicates = await this.batchSql.write(items, this.opts.now());
      for (const requestId of duplicates) {
        this.opts.logger?.('warn', 'store ignored a request id already recorded', { requestId });
      }
    });
  }

  // ---- reads ----------------------------------------------------------------------------------

  async requestExists(id: string): Promise<boolean> {
    return this.queued.has(id) || q.requestExists(this.rdb, id);
  }

  async getRequest(id: string): Promise<StoredRequest | null> {
    const item = this.queued.get(id);
    if (!item) return q.getRequest(this.rdb, id);
    const feedback = this.writer.items()
      .flatMap((i) => (i.kind === 'feedback' && i.fb.requestId === id ? [i.fb] : []));
    return { ...storedFromItem(item), feedback };
  }

  listRequests = (filter: Parameters<Store['listRequests']>[0]) => q.listRequests(this.rdb, filter);
  countRequests = () => q.countRequests(this.rdb);
  getWeights = () => q.getWeights(this.rdb);
  performance = () => q.performance(this.rdb);
  trainingRows = (sinceTs: number, limit: number, feedbackUntilTs?: number) => q.trainingRows(this.rdb, sinceTs, limit, feedbackUntilTs);
  lateFeedbackRows = (afterTs: number, untilTs: number, rowsUntilTs: number) => q.lateFeedbackRows(this.rdb, afterTs, untilTs, rowsUntilTs);
  getState = <T>(key: string) => q.getState<T>(this.rdb, key);
  stats = (sinceTs: number) => q.stats(this.rdb, sinceTs);
  timeSeries = (bucketMs: number, sinceTs: number) => q.timeSeries(this.rdb, bucketMs, sinceTs);
  learnerRuns = (limit = 50, kind?: LearnerRunKind) => q.learnerRuns(this.rdb, limit, kind);
  decisionLog = (after: { ts: number; id: string }, limit: number) => q.decisionLog(this.rdb, after, limit);
  shadowCandidates = (after: { ts: number; id: string }, untilTs: number, limit: number) => q.shadowCandidates(this.rdb, after, untilTs, limit);
  shadowComparisons = (limit: number) => q.shadowComparisons(this.rdb, limit);
  shadowSpend = (sinceTs: number) => q.shadowSpend(this.rdb, sinceTs);
  learnerRunTotals = () => q.learnerRunTotals(this.rdb);
  readPriors = (version?: number) => q.readPriors(this.rdb, version);

  all<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    return this.rdb.all<T>(sql, params);
  }

  // ---- direct writes (serialised with the batch writer on the write connection) ---------------

  async run(sql: string, params: unknown[] = []): Promise<void> {
    await this.wdb.exclusive(() => this.wdb.run(sql, params));
  }

  async runBatch(statements: { sql: string; params?: unknown[] }[]): Promise<void> {
    await this.wdb.transaction(async () => {
      for (const s of statements) await this.wdb.run(s.sql, s.params ?? []);
    });
  }

  async setWeights(weights: { model: string; weight?: number; enabled?: boolean }[]): Promise<void> {
    for (const w of weights) {
      if (w.weight !== undefined && !(Number.isFinite(w.weight) && w.weight >= 0)) {
        throw new RangeError(`weight for ${w.model} must be a finite number >= 0`);
      }
    }
    const now = this.opts.now();
    await this.runBatch(weights.map((w) => {
      const weight = w.weight ?? null;
      const enabled = w.enabled === undefined ? null : w.enabled ? 1 : 0;
      return {
        sql: `INSERT INTO model_weights (model, weight, enabled, updated_at) VALUES (?, COALESCE(?, 1), COALESCE(?, 1), ?)
          ON CONFLICT (model) DO UPDATE SET weight = COALESCE(?, weight), enabled = COALESCE(?, enabled),
            updated_at = excluded.updated_at`,
        params: [w.model, weight, enabled, now, weight, enabled],
      };
    }));
  }

  async setState(key: string, value: unknown): Promise<void> {
    const json = JSON.stringify(value);
    if (json === undefined) throw new TypeError(`state ${key}: value is not JSON-serialisable`);
    await this.run(
      `INSERT INTO app_state (key, value_json, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value_json = excluded.value_json, updated_at = excluded.updated_at`,
      [key, json, this.opts.now()],
    );
  }

  async startLearnerRun(startedAt: number = this.opts.now(), kind: LearnerRunKind = 'learn'): Promise<number> {
    return this.wdb.exclusive(async () =>
      (await this.wdb.run("INSERT INTO learner_runs (started_at, status, kind) VALUES (?, 'running', ?)", [startedAt, kind])).lastID);
  }

  async recordShadowComparison(c: ShadowComparison): Promise<void> {
    await this.run(
      `INSERT INTO shadow_comparisons (ts, request_id, request_model, shadow_model, shadow_request_id, verdict, first_order,
         second_order, judge_model, cost_usd, reasoning, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [c.ts, c.requestId, c.requestModel, c.shadowModel, c.shadowRequestId, c.verdict, c.firstOrder, c.secondOrder, c.judgeModel,
        c.costUsd, truncateOrNull(c.reasoning, MAX_COMMENT_CHARS), truncateOrNull(c.error, MAX_ERROR_CHARS)],
    );
  }

  async finishLearnerRun(id: number, r: LearnerRunResult): Promise<void> {
    const json = (v: unknown): string | null => (v === undefined ? null : JSON.stringify(v));
    await this.run(
      `UPDATE learner_runs SET finished_at = ?, status = ?, rows_read = ?, changes_json = ?, metrics_before_json = ?,
         metrics_after_json = ?, error = ? WHERE id = ?`,
      [this.opts.now(), r.status, r.rowsRead, json(r.changes), json(r.metricsBefore), json(r.metricsAfter),
        truncateOrNull(r.error, MAX_ERROR_CHARS), id],
    );
  }

  /** Write-then-swap: readers keep the old version until the app_state pointer moves. Keeps 3 versions. */
  async writePriors(rows: PriorRow[]): Promise<number> {
    return this.wdb.transaction(async () => {
      const current = await this.wdb.get<{ v: number | null }>(
        `SELECT MAX(COALESCE((SELECT MAX(version) FROM routing_priors), 0),
                COALESCE((SELECT CAST(value_json AS INTEGER) FROM app_state WHERE key = 'priors.version'), 0)) AS v`,
      );
      const version = (current?.v ?? 0) + 1;
      const insert = await this.wdb.prepare(
        'INSERT INTO routing_priors (version, model, domain, language, alpha, beta) VALUES (?, ?, ?, ?, ?, ?)',
      );
      try {
        for (const r of rows) await insert.run([version, r.model, r.domain, r.language, r.alpha, r.beta]);
      } finally {
        await insert.finalize();
      }
      await this.wdb.run(
        `INSERT INTO app_state (key, value_json, updated_at) VALUES ('priors.version', ?, ?)
         ON CONFLICT (key) DO UPDATE SET value_json = excluded.value_json, updated_at = excluded.updated_at`,
        [JSON.stringify(version), this.opts.now()],
      );
      await this.wdb.run('DELETE FROM routing_priors WHERE version <= ?', [version - 3]);
      return version;
    });
  }
}

async function openConnection(file: string, busyTimeoutMs: number, cacheMb: number): Promise<Db> {
  const db = await Db.open(file);
  // foreign_keys stays OFF: feedback may name a request that is still in the write queue.
  await db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(busyTimeoutMs))};
    PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF;
    PRAGMA cache_size = ${-1024 * cacheMb};`);
  return db;
}

export async function openSqliteStore(options: SqliteStoreOptions): Promise<SqliteStore> {
  const opts = {
    flushMs: options.flushMs ?? 50,
    maxBatch: Math.max(1, options.maxBatch ?? 4000),
    busyTimeoutMs: options.busyTimeoutMs ?? 5000,
    retryBaseMs: options.retryBaseMs ?? 100,
    retryMaxMs: options.retryMaxMs ?? 5000,
    closeTimeoutMs: options.closeTimeoutMs ?? 30_000,
    now: options.now ?? Date.now,
    logger: options.logger,
  };
  const inMemory = options.path === ':memory:' || options.path === '';
  if (!inMemory) await mkdir(path.dirname(path.resolve(options.path)), { recursive: true });
  const writer = await openConnection(options.path, opts.busyTimeoutMs, WRITER_CACHE_MB);
  let reader: Db | null = null;
  try {
    const applied = await migrate(writer, undefined, opts.now);
    if (applied.length > 0) opts.logger?.('info', 'store migrations applied', { versions: applied });
    reader = inMemory ? writer : await openConnection(options.path, opts.busyTimeoutMs, READER_CACHE_MB);
    return new SqliteStoreImpl(options.path, writer, reader, new BatchSql(writer), opts);
  } catch (err) {
    if (reader && reader !== writer) await reader.close().catch(() => undefined);
    await writer.close().catch(() => undefined);
    throw err;
  }
}
