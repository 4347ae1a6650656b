// SQLite implementation of Store (the default): records are queued in memory and written by one
// batched writer (one transaction per batch, retried with backoff on failure); reads use a second
// WAL connection. The SQL is shared with PostgreSQL (sql/); SQLite's own parts are in sqlite/.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Log } from '../../core/log.ts';
import type { QueueItem } from './records.ts';
import { BatchSql } from './sqlite/batch-sql.ts';
import { Db, sqliteCode } from './sqlite/db.ts';
import { migrate } from './sqlite/migrations.ts';
import { SqlStore, type QueueOptions } from './sql/store.ts';
import type { SqlTx } from './sql/writes.ts';
import type { Store } from './types.ts';


export interface SqliteStoreOptions {
  /** Database file; ':memory:' for a private in-memory database (one connection). */
  path: string;
  /** How long a record may wait before its batch is written. Default 50. */
  flushMs?: number;
  /** A queue this long is written at once; also the most records per transaction. Default 4000. */
  maxBatch?: number;
  logger?: Log;
  /** PRAGMA busy_timeout for both connections. Default 5000. */
  busyTimeoutMs?: number;
  /** Backoff after a failed batch: retryBaseMs * 2^n, capped at retryMaxMs. Defaults 100 / 5000. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** close() gives up waiting for the queue to drain after this long, and rejects. Default 30000. */
  closeTimeoutMs?: number;
  now?: () => number;
}

/**
 * The SQLite store. `all` and `run` take raw SQL for tests and ad-hoc inspection of the file; nothing
 * in the gateway, admin page or learner uses them (the Store contract is what they use).
 */
export type SqliteStore = Store & {
  readonly path: string;
  all<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  run(sql: string, params?: unknown[]): Promise<void>;
};

export { MAX_ANSWER_CHARS, MAX_QUERY_CHARS } from './records.ts';

/** Codes that say "this record can never be written", as opposed to "the database is unwell now". */
const REFUSED_CODES = new Set(['SQLITE_CONSTRAINT', 'SQLITE_MISMATCH', 'SQLITE_TOOBIG', 'SQLITE_RANGE']);

/** Page cache per connection; admin scans over a large history read mostly through the reader. */
const READER_CACHE_MB = 64;
const WRITER_CACHE_MB = 16;

class SqliteStoreImpl extends SqlStore implements SqliteStore {
  readonly engine = 'sqlite' as const;
  // One machine: kNN index snapshots stay in the data directory, which every worker reads.
  readonly indexSnapshots = 'local' as const;

  constructor(
    readonly path: string,
    private readonly wdb: Db,
    private readonly rdb: Db,
    private readonly batchSql: BatchSql,
    opts: QueueOptions,
  ) {
    super(rdb, opts);
  }

  protected writeItems(items: QueueItem[], now: number): Promise<string[]> {
    return this.wdb.transaction(() => this.batchSql.write(items, now));
  }

  /** Serialised with the batch writer on the write connection. */
  protected tx<T>(fn: (tx: SqlTx) => Promise<T>): Promise<T> {
    return this.wdb.transaction(() => fn(this.wdb));
  }

  protected isRefusal(err: unknown): boolean {
    const code = sqliteCode(err);
    return code === null || REFUSED_CODES.has(code); // non-SQLite errors come from our own encoding
  }

  protected async closeConnections(): Promise<void> {
    await this.batchSql.finalize();
    if (this.rdb !== this.wdb) await this.rdb.close();
    await this.wdb.close();
  }

  all<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    return this.rdb.all<T>(sql, params);
  }

  async run(sql: string, params: unknown[] = []): Promise<void> {
    await this.wdb.exclusive(() => this.wdb.run(sql, params));
  }

  async saveIndexSnapshot(): Promise<void> {
    throw new Error('the SQLite store keeps kNN indexes in the data directory');
  }

  async loadIndexSnapshot(): Promise<null> {
    return null;
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
