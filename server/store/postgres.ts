// PostgreSQL implementation of Store, chosen by DATABASE_URL: several gateway instances share one
// database. Writes behind like SQLite (one batch per transaction, each table one multi-row INSERT
// over the batch bound as one JSON array); reads and direct writes use a connection pool; learner
// runs take an advisory lock; kNN index snapshots are kept in the database per learned version.
// Rows are bound as one jsonb array per statement: one parameter, parsed once by the server. A batch
// of answered requests alone (the proxy path) is one statement, so one round trip per group commit.
import pg from 'pg';
import type { Log } from '../../core/log.ts';
import { QUERY_NESTED, QUERY_ROW_COLUMNS, writeBatch, type BatchOps, type QueueItem, type RequestItem } from './records.ts';
import { inTransaction, PgSql, pgTypes } from './postgres/db.ts';
import { migratePg } from './postgres/migrations.ts';
import { SqlStore, type QueueOptions } from './sql/store.ts';
import type { SqlTx } from './sql/writes.ts';
import type { IndexSnapshotFile, Store, StoreLock } from './types.ts';

export interface PostgresStoreOptions {
  /** postgres://user:password@host:port/database (never logged). */
  url: string;
  /** Connections in the pool (reads, direct writes, the batch writer, a learner's lock). Default 10. */
  poolSize?: number;
  flushMs?: number;
  maxBatch?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  closeTimeoutMs?: number;
  /** How long a new connection may take before the attempt fails. Default 5000. */
  connectTimeoutMs?: number;
  now?: () => number;
  logger?: Log;
}

export type PostgresStore = Store & { readonly engine: 'postgres' };

/** Characters of row JSON bound to one statement. */
const MAX_JSON_CHARS = 4_000_000;
/** Any fixed number: the key of the learner's advisory lock. */
const LEARNER_LOCK = 0x5359_0002;

/** `postgres://user:***@host:port/db`: for messages; the password never leaves the URL. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

/** The rows in statements of at most MAX_JSON_CHARS each, as JSON array texts. */
function* jsonChunks(rows: string[]): Generator<string> {
  let start = 0;
  let size = 0;
  for (let i = 0; i < rows.length; i++) {
    if (i > start && size + rows[i]!.length > MAX_JSON_CHARS) {
      yield `[${rows.slice(start, i).join(',')}]`;
      start = i;
      size = 0;
    }
    size += rows[i]!.length + 1;
  }
  if (rows.length > start) yield `[${(start === 0 ? rows : rows.slice(start)).join(',')}]`;
}

/** `r->>i` cast to each column's type: the row's JSON array elements in QUERY_ROW_COLUMNS order. */
const QUERY_CASTS: Record<string, string> = {
  ts: 'bigint', message_count: 'float8::integer', stream: 'float8::smallint', http_status: 'float8::integer',
  latency_ms: 'float8::bigint', input_tokens: 'float8::bigint', output_tokens: 'float8::bigint', cost_usd: 'float8',
  demo: 'float8::smallint',
};
const QUERY_VALUES = QUERY_ROW_COLUMNS.map((c, i) => {
  const cast = QUERY_CASTS[c];
  // `->>` of a nested object or array is its JSON text (jsonb's normal form: same values, keys
  // reordered); of JSON null, SQL NULL. jsonb, not json: json re-scans the row text for every `->>`
  // (a 4,000-row batch took 1.2 s instead of 0.13 s).
  return QUERY_NESTED.includes(i) || !cast ? `r->>${i}` : `(r->>${i})::${cast}`;
}).join(', ');

const INSERT_QUERIES = `INSERT INTO queries (${QUERY_ROW_COLUMNS.join(', ')})
  SELECT ${QUERY_VALUES} FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS t(r, n) ORDER BY n
  ON CONFLICT (id) DO NOTHING RETURNING id`;

/** Adds the deltas of `SELECT model, domain, language, successes, total, latency, ratings sum, ratings count, cost, updated_at`. */
const addPerformance = (select: string) => `INSERT INTO model_performance (model, domain, language, successes, total, latency_sum_ms,
    rating_sum, rating_count, cost_usd, updated_at)
  ${select}
  ON CONFLICT (model, domain, language) DO UPDATE SET successes = model_performance.successes + excluded.successes,
    total = model_performance.total + excluded.total, latency_sum_ms = model_performance.latency_sum_ms + excluded.latency_sum_ms,
    rating_sum = model_performance.rating_sum + excluded.rating_sum, rating_count = model_performance.rating_count + excluded.rating_count,
    cost_usd = model_performance.cost_usd + excluded.cost_usd, updated_at = excluded.updated_at`;

/**
 * Request rows ($1) and their outcomes ($2: [id, model, domain, language, ok, latency, cost], in
 * queue order) in one statement, which is its own transaction: the outcomes of the rows actually
 * inserted (an id already stored is skipped) are summed per cell, in queue order as writeBatch
 * sums them, and cells are locked in key order (no deadlock between instances). Returns the ids inserted.
 */
const INSERT_REQUESTS_WITH_PERFORMANCE = `WITH inserted AS (${INSERT_QUERIES}),
  performance AS (${addPerformance(`SELECT o->>1, o->>2, o->>3, sum((o->>4)::bigint ORDER BY k), count(*), sum((o->>5)::float8 ORDER BY k),
      0, 0, sum((o->>6)::float8 ORDER BY k), $3::bigint
    FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS u(o, k) JOIN inserted ON inserted.id = o->>0
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`)})
  SELECT id FROM inserted`;

/** The batch statements on one client inside the batch's transaction. */
class PgBatch implements BatchOps {
  constructor(private readonly client: pg.ClientBase) {}

  async insertRequests(rows: string[]): Promise<string[]> {
    const ids: string[] = [];
    for (const json of jsonChunks(rows)) {
      const res = await this.client.query<{ id: string }>({ name: 'switchyard_insert_queries', text: INSERT_QUERIES, values: [json] });
      for (const row of res.rows) ids.push(row.id);
    }
    return ids;
  }

  async storedRatings(requestIds: string[]): Promise<{ request_id: string; source: string; rating: number }[]> {
    return (await this.client.query('SELECT request_id, source, rating FROM user_feedback WHERE request_id = ANY($1::text[])', [requestIds])).rows;
  }

  async upsertFeedback(rows: string[]): Promise<void> {
    for (const json of jsonChunks(rows)) {
      // In batch order, as SQLite does (ids follow it). Two instances replacing the same ratings at
      // once in opposite orders may deadlock: PostgreSQL aborts one, and its batch is retried.
      await this.client.query({
        name: 'switchyard_upsert_feedback',
        text: `INSERT INTO user_feedback (request_id, ts, rating, comment, source)
          SELECT r->>0, (r->>1)::bigint, (r->>2)::float8, r->>3, r->>4 FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS t(r, n) ORDER BY n
          ON CONFLICT (request_id, source) DO UPDATE SET prev_rating = user_feedback.rating, prev_ts = user_feedback.ts,
            ts = excluded.ts, rating = excluded.rating, comment = excluded.comment`,
        values: [json],
      });
    }
  }

  async answeringModels(requestIds: string[]): Promise<{ id: string; final_model: string; domain: string; language: string }[]> {
    return (await this.client.query('SELECT id, final_model, domain, language FROM queries WHERE id = ANY($1::text[]) AND final_model IS NOT NULL', [requestIds])).rows;
  }

  async addPerformance(rows: string[]): Promise<void> {
    for (const json of jsonChunks(rows)) {
      await this.client.query({
        name: 'switchyard_add_performance',
        // In key order, so every instance locks the cells in one order: no deadlock.
        text: addPerformance(`SELECT r->>0, r->>1, r->>2, (r->>3)::bigint, (r->>4)::bigint, (r->>5)::float8, (r->>6)::float8, (r->>7)::bigint,
            (r->>8)::float8, (r->>9)::bigint
          FROM jsonb_array_elements($1::jsonb) AS t(r) ORDER BY 1, 2, 3`),
        values: [json],
      });
    }
  }
}

/** SQLSTATE classes that say "this record can never be written": data exceptions (22) and integrity violations (23). */
const isPgRefusal = (err: unknown): boolean => {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code);
};

class PostgresStoreImpl extends SqlStore implements PostgresStore {
  readonly engine = 'postgres' as const;
  readonly indexSnapshots = 'store' as const;

  constructor(private readonly pool: pg.Pool, opts: QueueOptions) {
    super(new PgSql(pool), opts);
  }

  protected writeItems(items: QueueItem[], now: number): Promise<string[]> {
    const requests = items.every((i): i is RequestItem => i.kind === 'request') ? items : null;
    if (requests && requests.reduce((n, r) => n + r.row.length + 1, 0) <= MAX_JSON_CHARS) return this.writeRequests(requests, now);
    // Ratings are read before they are written (the rating they replace, the answering model): BEGIN ... COMMIT.
    return inTransaction(this.pool, (client) => writeBatch(new PgBatch(client), items, now));
  }

  /**
   * The proxy path's batch in one round trip instead of five (BEGIN, two INSERTs, COMMIT and the
   * wait for each): in commit mode every answer waits for its batch, and with the event loop busy
   * serving requests each round trip took milliseconds. Same outcome as writeBatch.
   */
  private async writeRequests(items: RequestItem[], now: number): Promise<string[]> {
    // The first record with an id wins; a later one in the batch is a duplicate, as in writeBatch.
    const first = new Map<string, RequestItem>();
    const duplicates: string[] = [];
    for (const item of items) {
      if (first.has(item.id)) duplicates.push(item.id);
      else first.set(item.id, item);
    }
    const unique = [...first.values()];
    const outcomes: string[] = [];
    for (const item of unique) {
      for (const o of item.outcomes) outcomes.push(JSON.stringify([item.id, o.model, item.domain, item.language, o.ok ? 1 : 0, o.latencyMs, o.costUsd]));
    }
    const res = await this.pool.query<{ id: string }>({
      name: 'switchyard_insert_requests',
      text: INSERT_REQUESTS_WITH_PERFORMANCE,
      values: [`[${unique.map((r) => r.row).join(',')}]`, `[${outcomes.join(',')}]`, now],
    });
    const inserted = new Set(res.rows.map((r) => r.id));
    for (const item of unique) if (!inserted.has(item.id)) duplicates.push(item.id);
    return duplicates;
  }

  protected tx<T>(fn: (tx: SqlTx) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, (client) => fn(new PgSql(client)));
  }

  protected isRefusal(err: unknown): boolean {
    return isPgRefusal(err);
  }

  protected async closeConnections(): Promise<void> {
    await this.pool.end();
  }

  override async pruneLearnedVersions(oldestKept: number, current: number): Promise<number[]> {
    const pruned = new Set(await super.pruneLearnedVersions(oldestKept, current));
    const res = await this.pool.query<{ version: number }>(
      'DELETE FROM knn_snapshots WHERE version < $1 OR version > $2 RETURNING version', [oldestKept, current],
    );
    for (const r of res.rows) pruned.add(r.version);
    return [...pruned].sort((a, b) => a - b);
  }

  async saveIndexSnapshot(version: number, files: IndexSnapshotFile[]): Promise<void> {
    await inTransaction(this.pool, async (client) => {
      await client.query('DELETE FROM knn_snapshots WHERE version = $1', [version]);
      for (const f of files) await client.query('INSERT INTO knn_snapshots (version, name, data) VALUES ($1, $2, $3)', [version, f.name, f.data]);
    });
  }

  async loadIndexSnapshot(version: number): Promise<IndexSnapshotFile[] | null> {
    const res = await this.pool.query<{ name: string; data: Buffer }>('SELECT name, data FROM knn_snapshots WHERE version = $1 ORDER BY name', [version]);
    return res.rows.length > 0 ? res.rows.map((r) => ({ name: r.name, data: r.data })) : null;
  }

  /** A session-level advisory lock on a connection held for the run: freed by release() or when the process dies. */
  async tryLearnerLock(): Promise<StoreLock | null> {
    const client = await this.pool.connect();
    try {
      const res = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [LEARNER_LOCK]);
      if (!res.rows[0]?.ok) {
        client.release();
        return null;
      }
    } catch (err) {
      client.release(err as Error);
      throw err;
    }
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        try {
          await client.query('SELECT pg_advisory_unlock($1)', [LEARNER_LOCK]);
          client.release();
        } catch (err) {
          client.release(err as Error); // closing the connection frees the lock too
        }
      },
    };
  }
}

export async function openPostgresStore(options: PostgresStoreOptions): Promise<PostgresStore> {
  const opts: QueueOptions = {
    flushMs: options.flushMs ?? 50,
    maxBatch: Math.max(1, options.maxBatch ?? 4000),
    retryBaseMs: options.retryBaseMs ?? 100,
    retryMaxMs: options.retryMaxMs ?? 5000,
    closeTimeoutMs: options.closeTimeoutMs ?? 30_000,
    now: options.now ?? Date.now,
    logger: options.logger,
  };
  const pool = new pg.Pool({
    connectionString: options.url,
    max: Math.max(2, options.poolSize ?? 10),
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    application_name: 'switchyard',
    // A statement stuck behind a lock fails (and its batch is retried) instead of waiting forever.
    statement_timeout: 60_000,
    types: pgTypes,
  });
  // An idle connection the server closes (restart, failover) is an event, not a crash: the pool replaces it.
  pool.on('error', (err) => options.logger?.('warn', 'PostgreSQL connection lost; the pool opens a new one', { error: err.message }));
  try {
    const client = await pool.connect();
    try {
      const applied = await migratePg(client, undefined, opts.now);
      if (applied.length > 0) opts.logger?.('info', 'store migrations applied', { engine: 'postgres', versions: applied });
    } finally {
      client.release();
    }
    return new PostgresStoreImpl(pool, opts);
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new Error(`PostgreSQL at ${redactUrl(options.url)}: ${(err as Error).message}`);
  }
}
