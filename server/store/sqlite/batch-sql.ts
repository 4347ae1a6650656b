// SQLite's statements for one write batch (records.ts writeBatch runs them): one INSERT per table
// with the rows bound as a single JSON text (a few statements per batch instead of one per row; a
// request is one row, its decision and attempts included).
import type { Db, PreparedStatement } from './db.ts';
import { QUERY_NESTED, QUERY_ROW_COLUMNS, writeBatch, type BatchOps, type QueueItem } from '../records.ts';

/** Characters of row JSON bound to one statement. */
const MAX_JSON_CHARS = 4_000_000;

/**
 * `INSERT INTO t (cols) SELECT value->>0, value->>1, ... FROM json_each(?)`: a whole batch is bound
 * as one JSON text. Binding every value separately (node-sqlite3 converts each parameter on the
 * event loop) was the largest cost of storing a request; this way the event loop does one native
 * JSON.stringify and SQLite decodes the rows on its own thread. One prepared statement per table.
 */
class JsonRowsInsert {
  private stmt: PreparedStatement | null = null;
  private readonly sql: string;
  private readonly returns: boolean;

  /** `nested` columns hold a JSON object or array of the row, stored as its JSON text (JSON null: SQL NULL). */
  constructor(private readonly db: Db, head: string, width: number, tail = '', nested: readonly number[] = []) {
    const values = Array.from({ length: width }, (_, i) => (nested.includes(i) ? `NULLIF(value->${i}, 'null')` : `value->>${i}`)).join(', ');
    // `WHERE true` keeps an upsert tail (ON CONFLICT) from being read as a join constraint.
    this.sql = `${head} SELECT ${values} FROM json_each(?) WHERE true ORDER BY key ${tail}`;
    this.returns = /\bRETURNING\b/i.test(tail);
  }

  /** Inserts the rows (each a JSON array from rowJson) in order; returns what a RETURNING tail produced. */
  async run<T = Record<string, unknown>>(rows: string[]): Promise<T[]> {
    if (rows.length === 0) return [];
    this.stmt ??= await this.db.prepare(this.sql);
    const out: T[] = [];
    // One statement per MAX_JSON_CHARS of rows: a backlog batch of long answers stays a few
    // modest strings instead of one of hundreds of megabytes.
    let start = 0;
    let size = 0;
    for (let i = 0; i < rows.length; i++) {
      if (i > start && size + rows[i]!.length > MAX_JSON_CHARS) {
        await this.send(rows, start, i, out);
        start = i;
        size = 0;
      }
      size += rows[i]!.length + 1;
    }
    await this.send(rows, start, rows.length, out);
    return out;
  }

  private async send<T>(rows: string[], from: number, to: number, out: T[]): Promise<void> {
    const params = [`[${(from === 0 && to === rows.length ? rows : rows.slice(from, to)).join(',')}]`];
    if (this.returns) out.push(...(await this.stmt!.all<T>(params)));
    else await this.stmt!.run(params);
  }

  async finalize(): Promise<void> {
    await this.stmt?.finalize();
    this.stmt = null;
  }
}

export class BatchSql implements BatchOps {
  private readonly queries: JsonRowsInsert;
  private readonly feedback: JsonRowsInsert;
  private readonly performance: JsonRowsInsert;
  private answering: PreparedStatement | null = null;
  private earlierRatings: PreparedStatement | null = null;

  constructor(private readonly db: Db) {
    this.queries = new JsonRowsInsert(db, `INSERT INTO queries (${QUERY_ROW_COLUMNS.join(', ')})`, QUERY_ROW_COLUMNS.length,
      'ON CONFLICT (id) DO NOTHING RETURNING id', QUERY_NESTED);
    // One rating per request and source: a new one replaces the old.
    this.feedback = new JsonRowsInsert(db, 'INSERT INTO user_feedback (request_id, ts, rating, comment, source)', 5,
      // prev_* keep the replaced rating, so the learner can tell what a row said before (RATING_AS_OF).
      `ON CONFLICT (request_id, source) DO UPDATE SET prev_rating = user_feedback.rating, prev_ts = user_feedback.ts,
        ts = excluded.ts, rating = excluded.rating, comment = excluded.comment`);
    this.performance = new JsonRowsInsert(db, `INSERT INTO model_performance (model, domain, language, successes, total,
      latency_sum_ms, rating_sum, rating_count, cost_usd, updated_at)`, 10,
    `ON CONFLICT (model, domain, language) DO UPDATE SET successes = successes + excluded.successes,
      total = total + excluded.total, latency_sum_ms = latency_sum_ms + excluded.latency_sum_ms,
      rating_sum = rating_sum + excluded.rating_sum, rating_count = rating_count + excluded.rating_count,
      cost_usd = cost_usd + excluded.cost_usd, updated_at = excluded.updated_at`);
  }

  /** Writes the items; the caller wraps this in one transaction. Returns the request ids already stored. */
  write(items: QueueItem[], now: number): Promise<string[]> {
    return writeBatch(this, items, now);
  }

  async insertRequests(rows: string[]): Promise<string[]> {
    return (await this.queries.run<{ id: string }>(rows)).map((r) => r.id);
  }

  async storedRatings(requestIds: string[]): Promise<{ request_id: string; source: string; rating: number }[]> {
    this.earlierRatings ??= await this.db.prepare(`SELECT request_id, source, rating FROM user_feedback
      WHERE request_id IN (SELECT value FROM json_each(?))`);
    return this.earlierRatings.all([JSON.stringify(requestIds)]);
  }

  async upsertFeedback(rows: string[]): Promise<void> {
    await this.feedback.run(rows);
  }

  async answeringModels(requestIds: string[]): Promise<{ id: string; final_model: string; domain: string; language: string }[]> {
    this.answering ??= await this.db.prepare(`SELECT id, final_model, domain, language FROM queries
      WHERE id IN (SELECT value FROM json_each(?)) AND final_model IS NOT NULL`);
    return this.answering.all([JSON.stringify(requestIds)]);
  }

  async addPerformance(rows: string[]): Promise<void> {
    await this.performance.run(rows);
  }

  async finalize(): Promise<void> {
    await Promise.all([this.queries, this.feedback, this.performance].map((m) => m.finalize()));
    await this.answering?.finalize();
    await this.earlierRatings?.finalize();
    this.answering = null;
    this.earlierRatings = null;
  }
}
