// The SQL of one write batch: one INSERT per table with the rows bound as a single JSON text (a few
// statements per batch instead of one per row; a request is one row, its decision and attempts
// included), and model_performance deltas folded in memory, upserted once per cell.
import type { QueryFeatures, RoutingDecision } from '../../router/types.ts';
import type { Db, PreparedStatement } from './db.ts';
import { storedCalls, storedDecision, type StoredCall, type StoredDecision } from './queries.ts';
import type { FeedbackRecord, ModelCallRecord, RequestRecord, StoredRequest } from './types.ts';

/**
 * A queued request: its `queries` row already as JSON, and what model_performance needs. Serialised
 * when recorded, so a request waiting for its batch holds one string instead of its object graph
 * (records wait tens of milliseconds, long enough to be copied by the young-generation GC).
 */
export interface RequestItem {
  kind: 'request';
  id: string;
  row: string;
  domain: string;
  language: string;
  /** One per model that was tried (or the final model when there were no attempts). */
  outcomes: { model: string; ok: boolean; latencyMs: number; costUsd: number }[];
}
export interface FeedbackItem {
  kind: 'feedback';
  fb: FeedbackRecord;
}
export type QueueItem = RequestItem | FeedbackItem;

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

  /** Inserts the rows (each a JSON array from jsonForSqlite) in order; returns what a RETURNING tail produced. */
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

/**
 * An escaped NUL or lone surrogate in JSON.stringify's output (which escapes exactly those, and
 * writes paired surrogates as they are), not preceded by an escaping backslash.
 */
const UNSTORABLE = /(?<!\\)((?:\\\\)*)\\u(?:0000|d[89a-f][0-9a-f]{2})/g;

/**
 * JSON for json_each. SQLite's JSON functions end a text at NUL and turn a lone surrogate into
 * invalid UTF-8, so both are stored as U+FFFD (as binding a JS string would store a lone surrogate).
 */
export function jsonForSqlite(value: unknown): string {
  const json = JSON.stringify(value);
  return /\\u(?:0000|d[89a-f])/.test(json) ? json.replace(UNSTORABLE, '$1\\ufffd') : json;
}

interface CellDelta {
  model: string; domain: string; language: string;
  successes: number; total: number; latency: number; cost: number; ratingSum: number; ratingCount: number;
}

export const MAX_ERROR_CHARS = 4_000;
export const truncateOrNull = (s: string | null | undefined, max: number): string | null =>
  (s == null ? null : s.length > max ? s.slice(0, max) : s);

export class BatchSql {
  private readonly queries: JsonRowsInsert;
  private readonly feedback: JsonRowsInsert;
  private readonly performance: JsonRowsInsert;
  private answeringModels: PreparedStatement | null = null;
  private earlierRatings: PreparedStatement | null = null;

  constructor(private readonly db: Db) {
    this.queries = new JsonRowsInsert(db, `INSERT INTO queries (id, ts, endpoint, query_text, message_count,
      requested_model, stream, language, domain, complexity, features_json, final_model, status, http_status,
      latency_ms, answer, input_tokens, output_tokens, cost_usd, error, demo, client_key_hash, decision_json, calls_json, method,
      correlation_id, owner)`, 27,
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

  /**
   * Writes the items; the caller wraps this in one transaction. Returns the request ids that were
   * already stored (ignored, and not counted again in model_performance).
   */
  async write(items: QueueItem[], now: number): Promise<string[]> {
    const requests = items.filter((i): i is RequestItem => i.kind === 'request');
    // The last rating of a batch for a (request, source) is the one that stays.
    const latest = new Map<string, FeedbackItem>();
    for (const i of items) if (i.kind === 'feedback') latest.set(JSON.stringify([i.fb.requestId, i.fb.source]), i);
    const feedback = [...latest.values()];
    const cells = new Map<string, CellDelta>();
    const cell = (model: string, domain: string, language: string): CellDelta => {
      const key = JSON.stringify([model, domain, language]);
      let delta = cells.get(key);
      if (!delta) {
        delta = { model, domain, language, successes: 0, total: 0, latency: 0, cost: 0, ratingSum: 0, ratingCount: 0 };
        cells.set(key, delta);
      }
      return delta;
    };
    const outcome = (model: string, domain: string, language: string, ok: boolean, latencyMs: number, costUsd: number): void => {
      const delta = cell(model, domain, language);
      delta.successes += ok ? 1 : 0;
      delta.total += 1;
      delta.latency += latencyMs;
      delta.cost += costUsd;
    };

    const inserted = new Set(
      (await this.queries.run<{ id: string }>(requests.map((r) => r.row))).map((r) => r.id),
    );
    // The first record with an id wins; later ones (same batch or already stored) are duplicates.
    const duplicates: string[] = [];
    for (const item of requests) {
      if (!inserted.delete(item.id)) {
        duplicates.push(item.id);
        continue;
      }
      for (const o of item.outcomes) outcome(o.model, item.domain, item.language, o.ok, o.latencyMs, o.costUsd);
    }

    if (feedback.length > 0) {
      // A replaced rating moves the running totals by the difference and does not count twice.
      this.earlierRatings ??= await this.db.prepare(`SELECT request_id, source, rating FROM user_feedback
        WHERE request_id IN (SELECT value FROM json_each(?))`);
      const earlier = new Map((await this.earlierRatings.all<{ request_id: string; source: string; rating: number }>(
        [JSON.stringify([...new Set(feedback.map(({ fb }) => fb.requestId))])],
      )).map((r) => [JSON.stringify([r.request_id, r.source]), r.rating]));
      await this.feedback.run(feedback.map(({ fb }) => jsonForSqlite([fb.requestId, fb.ts, fb.rating, fb.comment, fb.source])));
      // The answering model is read back: its request was written in this batch or an earlier one.
      this.answeringModels ??= await this.db.prepare(`SELECT id, final_model, domain, language FROM queries
        WHERE id IN (SELECT value FROM json_each(?)) AND final_model IS NOT NULL`);
      const answered = await this.answeringModels.all<{ id: string; final_model: string; domain: string; language: string }>(
        [JSON.stringify([...new Set(feedback.map(({ fb }) => fb.requestId))])],
      );
      const byId = new Map(answered.map((r) => [r.id, r]));
      for (const { fb } of feedback) {
        const r = byId.get(fb.requestId);
        if (!r) continue;
        const delta = cell(r.final_model, r.domain, r.language);
        const old = earlier.get(JSON.stringify([fb.requestId, fb.source]));
        delta.ratingSum += fb.rating - (old ?? 0);
        delta.ratingCount += old === undefined ? 1 : 0;
      }
    }

    await this.performance.run([...cells.values()].map((d) => jsonForSqlite([
      d.model, d.domain, d.language, d.successes, d.total, d.latency, d.ratingSum, d.ratingCount, d.cost, now,
    ])));
    return duplicates;
  }

  async finalize(): Promise<void> {
    await Promise.all([this.queries, this.feedback, this.performance].map((m) => m.finalize()));
    await this.answeringModels?.finalize();
    await this.earlierRatings?.finalize();
    this.answeringModels = null;
    this.earlierRatings = null;
  }
}

/** Row positions in queryRow() that hold JSON objects (features, decision, attempts). */
const QUERY_NESTED = [10, 22, 23];

/** The propensities and policy a decision logged (for off-policy evaluation), kept as given when present. */
function loggedPolicy(decision: RoutingDecision): { propensities?: unknown; policy?: unknown } {
  const d = decision as RoutingDecision & { propensities?: unknown; policy?: unknown };
  return { ...(d.propensities !== undefined ? { propensities: d.propensities } : {}), ...(d.policy !== undefined ? { policy: d.policy } : {}) };
}

/** The request as one queued item: its row (decision without its features, which are the request's, and the attempts ride along as JSON) and its evidence. */
export function requestItem(req: RequestRecord, decision: RoutingDecision | null, calls: ModelCallRecord[]): RequestItem {
  const f = req.features;
  const row = [
    req.id, req.ts, req.endpoint, req.queryText, req.messageCount, req.requestedModel, req.stream ? 1 : 0,
    f.language, f.domain, f.complexity, f, req.finalModel, req.status, req.httpStatus,
    Math.round(req.latencyMs), req.answer, req.inputTokens, req.outputTokens, req.costUsd, req.error,
    req.demo ? 1 : 0, req.clientKeyHash ?? null,
    decision && {
      method: decision.method, selected: decision.selected, confidence: decision.confidence, reasoning: decision.reasoning,
      candidates: decision.candidates, timings: decision.timings, judge: decision.judge ?? null,
      ...loggedPolicy(decision),
    },
    calls.map((c) => ({
      ts: c.ts, model: c.model, attempt: c.attempt, status: c.status, httpStatus: c.httpStatus,
      latencyMs: Math.round(c.latencyMs), inputTokens: c.inputTokens, outputTokens: c.outputTokens, costUsd: c.costUsd,
      error: truncateOrNull(c.error, MAX_ERROR_CHARS),
    })),
    decision?.method ?? null,
    req.correlationId ?? null, req.owner ?? null,
  ];
  // Each attempt is evidence about its model; without attempts, the request speaks for its final model.
  const outcomes: RequestItem['outcomes'] = [];
  for (const c of calls) {
    if (c.status !== 'skipped') outcomes.push({ model: c.model, ok: c.status === 'ok', latencyMs: c.latencyMs, costUsd: c.costUsd });
  }
  if (outcomes.length === 0 && req.finalModel) {
    outcomes.push({ model: req.finalModel, ok: req.status === 'ok', latencyMs: req.latencyMs, costUsd: req.costUsd });
  }
  return { kind: 'request', id: req.id, row: jsonForSqlite(row), domain: f.domain, language: f.language, outcomes };
}

/** A queued request read back from its row, as getRequest() answers it once stored. */
export function storedFromItem(item: RequestItem): Omit<StoredRequest, 'feedback'> {
  const r = JSON.parse(item.row) as unknown[];
  const features = r[10] as QueryFeatures;
  return {
    id: r[0] as string, ts: r[1] as number, endpoint: r[2] as string, queryText: r[3] as string,
    messageCount: r[4] as number, requestedModel: r[5] as string | null, stream: r[6] === 1, features,
    finalModel: r[11] as string | null, status: r[12] as RequestRecord['status'], httpStatus: r[13] as number,
    latencyMs: r[14] as number, answer: r[15] as string | null, inputTokens: r[16] as number,
    outputTokens: r[17] as number, costUsd: r[18] as number, error: r[19] as string | null, demo: r[20] === 1,
    clientKeyHash: r[21] as string | null,
    correlationId: r[25] as string | null,
    owner: r[26] as string | null,
    decision: storedDecision(r[22] as StoredDecision | null, features),
    calls: storedCalls(r[23] as StoredCall[], item.id),
  };
}
