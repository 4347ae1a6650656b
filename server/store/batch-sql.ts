// The SQL of one write batch: multi-row INSERTs prepared once per chunk size (a few statements per
// batch instead of one per row), and model_performance deltas folded in memory, upserted once per cell.
import type { RoutingDecision } from '../../router/types.ts';
import type { Db, PreparedStatement } from './db.ts';
import type { FeedbackRecord, ModelCallRecord, RequestRecord } from './types.ts';

export interface RequestItem {
  kind: 'request';
  req: RequestRecord;
  decision: RoutingDecision | null;
  calls: ModelCallRecord[];
}
export interface FeedbackItem {
  kind: 'feedback';
  fb: FeedbackRecord;
}
export type QueueItem = RequestItem | FeedbackItem;

/** Rows per statement (256 x 22 parameters stays under SQLite's 32,766 limit); a batch is cut greedily into these sizes, so at most four statements are prepared per table. */
const CHUNK_SIZES = [256, 32, 4, 1] as const;

/** `INSERT ... VALUES (...), (...) <tail>` for any number of rows, with one prepared statement per chunk size. */
class MultiRowInsert {
  private readonly prepared = new Map<number, PreparedStatement>();
  private readonly returns: boolean;

  constructor(private readonly db: Db, private readonly head: string, private readonly width: number, private readonly tail = '') {
    this.returns = /\bRETURNING\b/i.test(tail);
  }

  /** Inserts all rows; returns what a RETURNING tail produced. */
  async run<T = Record<string, unknown>>(rows: unknown[][]): Promise<T[]> {
    const out: T[] = [];
    let at = 0;
    for (const size of CHUNK_SIZES) {
      while (rows.length - at >= size) {
        const stmt = await this.statement(size);
        const params = rows.slice(at, at + size).flat();
        if (this.returns) out.push(...(await stmt.all<T>(params)));
        else await stmt.run(params);
        at += size;
      }
    }
    return out;
  }

  private async statement(size: number): Promise<PreparedStatement> {
    let stmt = this.prepared.get(size);
    if (!stmt) {
      const row = `(${Array.from({ length: this.width }, () => '?').join(', ')})`;
      stmt = await this.db.prepare(`${this.head} VALUES ${Array.from({ length: size }, () => row).join(', ')} ${this.tail}`);
      this.prepared.set(size, stmt);
    }
    return stmt;
  }

  async finalize(): Promise<void> {
    await Promise.all([...this.prepared.values()].map((s) => s.finalize()));
    this.prepared.clear();
  }
}

interface CellDelta {
  model: string; domain: string; language: string;
  successes: number; total: number; latency: number; cost: number; ratingSum: number; ratingCount: number;
}

export const MAX_ERROR_CHARS = 4_000;
export const truncateOrNull = (s: string | null | undefined, max: number): string | null =>
  (s == null ? null : s.length > max ? s.slice(0, max) : s);

export class BatchSql {
  private readonly queries: MultiRowInsert;
  private readonly decisions: MultiRowInsert;
  private readonly calls: MultiRowInsert;
  private readonly feedback: MultiRowInsert;
  private readonly performance: MultiRowInsert;
  private answeringModels: PreparedStatement | null = null;

  constructor(private readonly db: Db) {
    this.queries = new MultiRowInsert(db, `INSERT INTO queries (id, ts, endpoint, query_text, message_count,
      requested_model, stream, language, domain, complexity, features_json, final_model, status, http_status,
      latency_ms, answer, input_tokens, output_tokens, cost_usd, error, demo, client_key_hash)`, 22,
    'ON CONFLICT (id) DO NOTHING RETURNING id');
    this.decisions = new MultiRowInsert(db, `INSERT OR REPLACE INTO routing_decisions (request_id, ts, method,
      selected_model, confidence, reasoning, candidates_json, features_json, timings_json, judge_json)`, 10);
    this.calls = new MultiRowInsert(db, `INSERT INTO model_calls (request_id, ts, model, attempt, status, http_status,
      latency_ms, input_tokens, output_tokens, cost_usd, error)`, 11);
    this.feedback = new MultiRowInsert(db, 'INSERT INTO user_feedback (request_id, ts, rating, comment, source)', 5);
    this.performance = new MultiRowInsert(db, `INSERT INTO model_performance (model, domain, language, successes, total,
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
    const feedback = items.filter((i): i is FeedbackItem => i.kind === 'feedback');
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
      (await this.queries.run<{ id: string }>(requests.map(({ req }) => queryRow(req)))).map((r) => r.id),
    );
    // The first record with an id wins; later ones (same batch or already stored) are duplicates.
    const fresh: RequestItem[] = [];
    const duplicates: string[] = [];
    for (const item of requests) {
      if (inserted.delete(item.req.id)) fresh.push(item);
      else duplicates.push(item.req.id);
    }
    await this.decisions.run(fresh.flatMap(({ req, decision }) => (decision ? [decisionRow(req, decision)] : [])));
    await this.calls.run(fresh.flatMap(({ req, calls }) => calls.map((c) => callRow(req.id, c))));
    for (const { req, calls } of fresh) {
      const { domain, language } = req.features;
      // Each attempt is evidence about its model; without attempts, the request speaks for its final model.
      const attempts = calls.filter((c) => c.status !== 'skipped');
      for (const c of attempts) outcome(c.model, domain, language, c.status === 'ok', c.latencyMs, c.costUsd);
      if (attempts.length === 0 && req.finalModel) {
        outcome(req.finalModel, domain, language, req.status === 'ok', req.latencyMs, req.costUsd);
      }
    }

    if (feedback.length > 0) {
      await this.feedback.run(feedback.map(({ fb }) => [fb.requestId, fb.ts, fb.rating, fb.comment, fb.source]));
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
        delta.ratingSum += fb.rating;
        delta.ratingCount += 1;
      }
    }

    await this.performance.run([...cells.values()].map((d) => [
      d.model, d.domain, d.language, d.successes, d.total, d.latency, d.ratingSum, d.ratingCount, d.cost, now,
    ]));
    return duplicates;
  }

  async finalize(): Promise<void> {
    await Promise.all([this.queries, this.decisions, this.calls, this.feedback, this.performance].map((m) => m.finalize()));
    await this.answeringModels?.finalize();
    this.answeringModels = null;
  }
}

function queryRow(req: RequestRecord): unknown[] {
  const f = req.features;
  return [
    req.id, req.ts, req.endpoint, req.queryText, req.messageCount, req.requestedModel, req.stream ? 1 : 0,
    f.language, f.domain, f.complexity, JSON.stringify(f), req.finalModel, req.status, req.httpStatus,
    Math.round(req.latencyMs), req.answer, req.inputTokens, req.outputTokens, req.costUsd, req.error,
    req.demo ? 1 : 0, req.clientKeyHash ?? null,
  ];
}

function decisionRow(req: RequestRecord, d: RoutingDecision): unknown[] {
  return [
    req.id, req.ts, d.method, d.selected, d.confidence, d.reasoning, JSON.stringify(d.candidates),
    JSON.stringify(d.features), JSON.stringify(d.timings), d.judge == null ? null : JSON.stringify(d.judge),
  ];
}

function callRow(requestId: string, c: ModelCallRecord): unknown[] {
  return [
    requestId, c.ts, c.model, c.attempt, c.status, c.httpStatus, Math.round(c.latencyMs), c.inputTokens,
    c.outputTokens, c.costUsd, truncateOrNull(c.error, MAX_ERROR_CHARS),
  ];
}
