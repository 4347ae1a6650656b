// Read side of both SQL stores: the SQL for the admin pages, the learner and the evaluator, and the
// mapping from rows back to the contract types. Written once in the SQL SQLite and PostgreSQL share
// (`?` placeholders; the PostgreSQL reader numbers them); the few differences are in Dialect.
import type { QueryFeatures } from '../../../core/routing.ts';
import { parseStoredParts } from '../parts.ts';
import {
  clampLimit, DEFAULT_PAGE, loggedPropensities, MAX_PAGE, NOT_POLICY_METHODS, PERSON_SOURCES, SHADOW_ENDPOINT,
  storedCalls, storedDecision, type StoredCall, type StoredDecision,
} from '../records.ts';
import type {
  DecisionLogRow,
  FeedbackRecord,
  LearnerRun,
  LearnerRunKind,
  ShadowCandidate,
  StoredShadowComparison,
  LearnerRunTotal,
  ModelWeight,
  PerformanceRow,
  PriorRow,
  RequestFilter,
  StoreStats,
  StoredRequest,
  TimeSeriesPoint,
  TrainingRow,
  RequestCursor,
} from '../types.ts';

interface QueryRow {
  id: string;
  ts: number;
  endpoint: string;
  query_text: string;
  message_count: number;
  requested_model: string | null;
  stream: number;
  features_json: string;
  final_model: string | null;
  status: 'ok' | 'error';
  http_status: number;
  latency_ms: number;
  answer: string | null;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  error: string | null;
  demo: number;
  client_key_hash: string | null;
  correlation_id: string | null;
  owner: string | null;
  decision_json: string | null;
  calls_json: string;
  /** Only read by getRequest (a page of requests leaves it out); NULL on rows older than the column. */
  parts_json?: string | null;
}

/** Where the engines' SQL differs. */
export interface Dialect {
  readonly name: 'sqlite' | 'postgres';
  /** `column IN (...)` over a parameter bound as a JSON array of strings. */
  inJsonArray(column: string): string;
  /** The start of `column`'s bucket of a parameter's width (whole ms). */
  bucket(column: string): string;
}

/** Parameterised reads on one connection or pool. Parameters are `?`. */
export interface SqlReader {
  readonly dialect: Dialect;
  get<T>(sql: string, params?: readonly unknown[]): Promise<T | undefined>;
  all<T>(sql: string, params?: readonly unknown[]): Promise<T[]>;
}

type Db = SqlReader;

interface FeedbackRow {
  request_id: string;
  ts: number;
  rating: number;
  comment: string | null;
  source: FeedbackRecord['source'];
}

const QUERY_COLUMNS = `q.id, q.ts, q.endpoint, q.query_text, q.message_count, q.requested_model, q.stream,
  q.features_json, q.final_model, q.status, q.http_status, q.latency_ms, q.answer, q.input_tokens,
  q.output_tokens, q.cost_usd, q.error, q.demo, q.client_key_hash, q.decision_json, q.calls_json,
  q.correlation_id, q.owner`;

function toFeedback(row: FeedbackRow): FeedbackRecord {
  return { requestId: row.request_id, ts: row.ts, rating: row.rating, comment: row.comment, source: row.source };
}

function groupBy<R extends { request_id: string }, T>(rows: R[], map: (row: R) => T): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const row of rows) {
    const list = out.get(row.request_id);
    if (list) list.push(map(row));
    else out.set(row.request_id, [map(row)]);
  }
  return out;
}

/** Request rows as stored requests: decision and attempts from their JSON columns, feedback with one IN (...) look-up. */
async function hydrate(db: Db, rows: QueryRow[]): Promise<StoredRequest[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const feedback = await db.all<FeedbackRow>(
    `SELECT * FROM user_feedback WHERE request_id IN (${ids.map(() => '?').join(',')}) ORDER BY ts, id`, ids,
  );
  const feedbackById = groupBy(feedback, toFeedback);
  return rows.map((row) => {
    const features = JSON.parse(row.features_json) as QueryFeatures;
    return {
      id: row.id,
      ts: row.ts,
      endpoint: row.endpoint,
      queryText: row.query_text,
      messageCount: row.message_count,
      requestedModel: row.requested_model,
      stream: row.stream === 1,
      features,
      finalModel: row.final_model,
      status: row.status,
      httpStatus: row.http_status,
      latencyMs: row.latency_ms,
      answer: row.answer,
      inputTokens: row.input_tokens,
      outputTokens: row.output_tokens,
      costUsd: row.cost_usd,
      error: row.error,
      demo: row.demo === 1,
      clientKeyHash: row.client_key_hash,
      correlationId: row.correlation_id,
      owner: row.owner,
      decision: storedDecision(row.decision_json === null ? null : (JSON.parse(row.decision_json) as StoredDecision), features),
      calls: storedCalls(JSON.parse(row.calls_json) as StoredCall[], row.id),
      ...(row.parts_json !== undefined ? { parts: parseStoredParts(row.parts_json) } : {}),
      feedback: feedbackById.get(row.id) ?? [],
    };
  });
}

export async function requestExists(db: Db, id: string): Promise<boolean> {
  return (await db.get('SELECT 1 AS x FROM queries WHERE id = ?', [id])) !== undefined;
}

export async function getRequest(db: Db, id: string): Promise<StoredRequest | null> {
  const row = await db.get<QueryRow>(`SELECT ${QUERY_COLUMNS}, q.parts_json FROM queries q WHERE q.id = ?`, [id]);
  return row ? ((await hydrate(db, [row]))[0] ?? null) : null;
}

/** Newest first. Keyset (`beforeTs`/`beforeId`) and limit/offset pagination both work. */
export async function listRequests(db: Db, filter: RequestFilter): Promise<StoredRequest[]> {
  const { sql, params } = listRequestsSql(filter);
  return hydrate(db, await db.all<QueryRow>(sql, params));
}

/** The page query for listRequests: newest first, every filter answered from the covering time index. */
export function listRequestsSql(filter: RequestFilter): { sql: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (clause: string, ...values: unknown[]): void => {
    where.push(clause);
    params.push(...values);
  };
  if (filter.model !== undefined) add('q.final_model = ?', filter.model);
  if (filter.domain !== undefined) add('q.domain = ?', filter.domain);
  if (filter.language !== undefined) add('q.language = ?', filter.language);
  if (filter.status !== undefined) add('q.status = ?', filter.status);
  if (filter.method !== undefined) add('q.method = ?', filter.method);
  if (filter.rated === true) add('EXISTS (SELECT 1 FROM user_feedback f WHERE f.request_id = q.id)');
  if (filter.rated === false) add('NOT EXISTS (SELECT 1 FROM user_feedback f WHERE f.request_id = q.id)');
  if (filter.minRating !== undefined) {
    add('(SELECT AVG(f.rating) FROM user_feedback f WHERE f.request_id = q.id) >= ?', filter.minRating);
  }
  if (filter.beforeTs !== undefined) {
    if (filter.beforeId !== undefined) add('(q.ts, q.id) < (?, ?)', filter.beforeTs, filter.beforeId);
    else add('q.ts < ?', filter.beforeTs);
  }
  const limit = clampLimit(filter.limit ?? DEFAULT_PAGE);
  const offset = Math.max(Math.trunc(filter.offset ?? 0), 0);
  const sql = `SELECT ${QUERY_COLUMNS} FROM queries q ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY q.ts DESC, q.id DESC LIMIT ? OFFSET ?`;
  return { sql, params: [...params, limit, offset] };
}

export async function countRequests(db: Db): Promise<number> {
  return (await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM queries'))?.n ?? 0;
}

export async function getWeights(db: Db): Promise<ModelWeight[]> {
  const rows = await db.all<{ model: string; weight: number; enabled: number; updated_at: number }>(
    'SELECT model, weight, enabled, updated_at FROM model_weights ORDER BY model',
  );
  return rows.map((r) => ({ model: r.model, weight: r.weight, enabled: r.enabled === 1, updatedAt: r.updated_at }));
}

export async function performance(db: Db): Promise<PerformanceRow[]> {
  const rows = await db.all<{
    model: string; domain: string; language: string; successes: number; total: number;
    latency_sum_ms: number; rating_sum: number; rating_count: number; cost_usd: number;
  }>('SELECT * FROM model_performance ORDER BY model, domain, language');
  return rows.map((r) => ({
    model: r.model,
    domain: r.domain,
    language: r.language,
    successes: r.successes,
    total: r.total,
    avgLatencyMs: r.total > 0 ? r.latency_sum_ms / r.total : 0,
    ratingSum: r.rating_sum,
    ratingCount: r.rating_count,
    costUsd: r.cost_usd,
  }));
}

type TrainingSqlRow = {
  id: string; ts: number; query_text: string; language: string; domain: string; complexity: string;
  model: string; status: string; latency_ms: number; cost_usd: number; rating: number | null; implicit_negative: number;
  decision_json?: string | Record<string, unknown> | null;
};

/** π(answering model) the routing decision logged, when the model that answered is the one it chose. */
function loggedPropensity(decision: TrainingSqlRow['decision_json'], model: string): number | null {
  if (decision === null || decision === undefined) return null;
  let d: { selected?: unknown; propensities?: unknown };
  try {
    d = typeof decision === 'string' ? JSON.parse(decision) : decision;
  } catch {
    return null;
  }
  if (d.selected !== model || !d.propensities || typeof d.propensities !== 'object') return null;
  const p = (d.propensities as Record<string, unknown>)[model];
  return typeof p === 'number' && p > 0 && p <= 1 ? p : null;
}

/**
 * A rating as it stood at time `bound` (a whole number of ms, inlined): the current one if given by
 * then, else the one it replaced (prev_rating) if that was, else none. A request keeps one rating
 * per source, so a late rating that replaces one the learner already read is seen as a change.
 */
const RATING_AS_OF = (bound: number) => {
  const b = Math.trunc(bound);
  return `CASE WHEN f.ts <= ${b} THEN f.rating WHEN f.prev_ts <= ${b} THEN f.prev_rating END`;
};

/** Mean rating and "asked again" flag of a request from its feedback as it stood at `bound`. */
const FEEDBACK_AS_OF = (bound: number, rating = 'rating', implicit = 'implicit_negative') => `
       (SELECT AVG(${RATING_AS_OF(bound)}) FROM user_feedback f WHERE f.request_id = q.id) AS ${rating},
       CASE WHEN EXISTS (SELECT 1 FROM user_feedback f
               WHERE f.request_id = q.id AND f.source = 'implicit' AND (${RATING_AS_OF(bound)}) <= 2) THEN 1 ELSE 0 END AS ${implicit}`;

function toTrainingRow(r: TrainingSqlRow): TrainingRow {
  return {
    id: r.id,
    ts: r.ts,
    queryText: r.query_text,
    language: r.language,
    domain: r.domain,
    complexity: r.complexity,
    model: r.model,
    success: r.status === 'ok',
    latencyMs: r.latency_ms,
    costUsd: r.cost_usd,
    rating: r.rating,
    implicitNegative: r.implicit_negative === 1,
    propensity: loggedPropensity(r.decision_json, r.model),
  };
}

/** Answered requests after sinceTs, oldest first, with the feedback given up to feedbackUntilTs. */
export async function trainingRows(db: Db, sinceTs: number, limit: number, feedbackUntilTs = Number.MAX_SAFE_INTEGER): Promise<TrainingRow[]> {
  const rows = await db.all<TrainingSqlRow>(
    `SELECT q.id, q.ts, q.query_text, q.language, q.domain, q.complexity, q.final_model AS model, q.status,
       q.latency_ms, q.cost_usd, q.decision_json, ${FEEDBACK_AS_OF(feedbackUntilTs)}
     FROM queries q
     WHERE q.ts > ? AND q.final_model IS NOT NULL
     ORDER BY q.ts ASC, q.id ASC LIMIT ?`,
    [sinceTs, Math.max(Math.trunc(limit), 0)],
  );
  return rows.map(toTrainingRow);
}

/**
 * Answered requests up to rowsUntilTs that got feedback in (afterTs, untilTs]: each as it looked
 * with the feedback up to afterTs (when the learner last read it) and with the feedback up to untilTs.
 */
export async function lateFeedbackRows(db: Db, afterTs: number, untilTs: number, rowsUntilTs: number): Promise<{ before: TrainingRow; now: TrainingRow }[]> {
  const cols = 'q.id, q.ts, q.query_text, q.language, q.domain, q.complexity, q.final_model AS model, q.status, q.latency_ms, q.cost_usd, q.decision_json';
  const rows = await db.all<TrainingSqlRow & { rating_now: number | null; implicit_now: number }>(
    `SELECT ${cols}, ${FEEDBACK_AS_OF(afterTs)}, ${FEEDBACK_AS_OF(untilTs, 'rating_now', 'implicit_now')}
     FROM queries q
     WHERE q.id IN (SELECT request_id FROM user_feedback WHERE ts > ? AND ts <= ?)
       AND q.ts <= ? AND q.final_model IS NOT NULL
     ORDER BY q.ts ASC, q.id ASC`,
    [afterTs, untilTs, rowsUntilTs],
  );
  return rows.map((r) => ({ before: toTrainingRow(r), now: { ...toTrainingRow(r), rating: r.rating_now, implicitNegative: r.implicit_now === 1 } }));
}

export async function getState<T>(db: Db, key: string): Promise<T | null> {
  const row = await db.get<{ value_json: string }>('SELECT value_json FROM app_state WHERE key = ?', [key]);
  return row ? (JSON.parse(row.value_json) as T) : null;
}

/** Nearest-rank percentiles from a latency histogram: one grouped scan of the covering index, no sort of rows. */
function percentiles(histogram: { latency: number; n: number }[], total: number, ps: number[]): number[] {
  return ps.map((p) => {
    if (total === 0) return 0;
    const rank = Math.max(Math.ceil(p * total), 1);
    let seen = 0;
    for (const { latency, n } of histogram) {
      seen += n;
      if (seen >= rank) return latency;
    }
    return histogram[histogram.length - 1]?.latency ?? 0;
  });
}

export async function stats(db: Db, sinceTs: number): Promise<StoreStats> {
  const [totals, histogram, fb] = await Promise.all([
    db.get<{ n: number; errors: number | null; cost: number | null; input: number | null; output: number | null }>(
      `SELECT COUNT(*) AS n, SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors, SUM(cost_usd) AS cost,
         SUM(input_tokens) AS input, SUM(output_tokens) AS output
       FROM queries WHERE ts >= ?`,
      [sinceTs],
    ),
    db.all<{ latency: number; n: number }>(
      'SELECT latency_ms AS latency, COUNT(*) AS n FROM queries WHERE ts >= ? GROUP BY latency_ms ORDER BY latency_ms',
      [sinceTs],
    ),
    db.get<{ n: number; avg: number | null }>('SELECT COUNT(*) AS n, AVG(rating) AS avg FROM user_feedback WHERE ts >= ?', [sinceTs]),
  ]);
  const n = totals?.n ?? 0;
  const errors = totals?.errors ?? 0;
  const [p50, p95] = percentiles(histogram, n, [0.5, 0.95]);
  return {
    sinceTs,
    requests: n,
    errors,
    successRate: n > 0 ? (n - errors) / n : 0,
    p50LatencyMs: p50 ?? 0,
    p95LatencyMs: p95 ?? 0,
    costUsd: totals?.cost ?? 0,
    inputTokens: totals?.input ?? 0,
    outputTokens: totals?.output ?? 0,
    feedbackCount: fb?.n ?? 0,
    avgRating: fb?.avg ?? null,
  };
}

export async function timeSeries(db: Db, bucketMs: number, sinceTs: number): Promise<TimeSeriesPoint[]> {
  if (!(bucketMs > 0)) throw new RangeError('bucketMs must be positive');
  bucketMs = Math.max(1, Math.round(bucketMs));
  const [traffic, ratings] = await Promise.all([
    db.all<{ bucket: number; model: string; requests: number; successes: number; latency: number }>(
      `SELECT ${db.dialect.bucket('ts')} AS bucket, COALESCE(final_model, '') AS model, COUNT(*) AS requests,
         SUM(CASE WHEN status = 'ok' THEN 1 ELSE 0 END) AS successes, AVG(latency_ms) AS latency
       FROM queries WHERE ts >= ? GROUP BY bucket, model ORDER BY bucket, model`,
      [bucketMs, bucketMs, sinceTs],
    ),
    // Driven from the (much smaller) feedback table; feedback is never older than its request.
    db.all<{ bucket: number; model: string; rating_sum: number; rating_count: number }>(
      `SELECT ${db.dialect.bucket('q.ts')} AS bucket, COALESCE(q.final_model, '') AS model,
         SUM(f.rating) AS rating_sum, COUNT(*) AS rating_count
       FROM user_feedback f JOIN queries q ON q.id = f.request_id
       WHERE f.ts >= ? AND q.ts >= ? GROUP BY bucket, model`,
      [bucketMs, bucketMs, sinceTs, sinceTs],
    ),
  ]);
  const key = (bucket: number, model: string): string => `${bucket}\u0000${model}`;
  const rated = new Map(ratings.map((r) => [key(r.bucket, r.model), r]));
  return traffic.map((r) => {
    const rating = rated.get(key(r.bucket, r.model));
    return {
      bucketTs: r.bucket,
      model: r.model,
      requests: r.requests,
      successes: r.successes,
      avgLatencyMs: r.latency,
      ratingSum: rating?.rating_sum ?? 0,
      ratingCount: rating?.rating_count ?? 0,
    };
  });
}

export async function learnerRuns(db: Db, limit: number, kind?: LearnerRunKind): Promise<LearnerRun[]> {
  const rows = await db.all<{
    id: number; kind: LearnerRunKind; started_at: number; finished_at: number | null; status: LearnerRun['status']; rows_read: number;
    changes_json: string | null; metrics_before_json: string | null; metrics_after_json: string | null; error: string | null;
  }>(`SELECT * FROM learner_runs ${kind === undefined ? '' : 'WHERE kind = ?'} ORDER BY id DESC LIMIT ?`,
    [...(kind === undefined ? [] : [kind]), clampLimit(limit)]);
  const parse = (json: string | null): unknown => (json === null ? null : (JSON.parse(json) as unknown));
  return rows.map((r) => ({
    id: r.id,
    kind: r.kind,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    status: r.status,
    rowsRead: r.rows_read,
    changes: parse(r.changes_json),
    metricsBefore: parse(r.metrics_before_json),
    metricsAfter: parse(r.metrics_after_json),
    error: r.error,
  }));
}

/** Learner runs per outcome, with when the last of each finished (metrics). */
export async function learnerRunTotals(db: Db): Promise<LearnerRunTotal[]> {
  return db.all<LearnerRunTotal>(
    // Learning runs only: `npm run learn -- --evaluate` records runs of kind 'evaluate' that change nothing.
    `SELECT status, COUNT(*) AS runs, MAX(finished_at) AS "lastFinishedAt" FROM learner_runs WHERE kind = 'learn' GROUP BY status ORDER BY status`,
  );
}

export async function readPriors(db: Db, version?: number): Promise<{ version: number | null; rows: PriorRow[] }> {
  const v = version ?? (await getState<number>(db, 'priors.version'));
  if (v === null) return { version: null, rows: [] };
  const rows = await db.all<PriorRow>(
    'SELECT model, domain, language, alpha, beta FROM routing_priors WHERE version = ? ORDER BY model, domain, language',
    [v],
  );
  return { version: v, rows };
}

const NOT_POLICY = `(${NOT_POLICY_METHODS.map((m) => `'${m}'`).join(', ')})`;

/** Routed decisions after the (ts, id) cursor, oldest first, with all their ratings. */
export async function decisionLog(db: Db, after: { ts: number; id: string }, limit: number): Promise<DecisionLogRow[]> {
  const rows = await db.all<{
    id: string; ts: number; query_text: string; features_json: string; method: string; final_model: string | null;
    status: 'ok' | 'error'; cost_usd: number; latency_ms: number; decision_json: string;
  }>(
    `SELECT q.id, q.ts, q.query_text, q.features_json, q.method, q.final_model, q.status, q.cost_usd, q.latency_ms, q.decision_json
     FROM queries q
     WHERE (q.ts, q.id) > (?, ?) AND q.decision_json IS NOT NULL AND q.method NOT IN ${NOT_POLICY}
       AND q.endpoint <> '${SHADOW_ENDPOINT}'
     ORDER BY q.ts ASC, q.id ASC LIMIT ?`,
    [after.ts, after.id, clampLimit(limit, 10 * MAX_PAGE)],
  );
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  const feedback = await db.all<FeedbackRow>(
    `SELECT * FROM user_feedback WHERE ${db.dialect.inJsonArray('request_id')} ORDER BY ts, id`, [JSON.stringify(ids)],
  );
  const byId = groupBy(feedback, (f) => ({ source: f.source, rating: f.rating, ts: f.ts }));
  return rows.map((r) => {
    const d = JSON.parse(r.decision_json) as StoredDecision & { propensities?: unknown; policy?: unknown };
    return {
      id: r.id,
      ts: r.ts,
      queryText: r.query_text,
      features: JSON.parse(r.features_json) as QueryFeatures,
      method: r.method,
      selected: d.selected,
      finalModel: r.final_model,
      candidates: Array.isArray(d.candidates) ? d.candidates.map((c) => c.model) : [d.selected],
      propensities: loggedPropensities(d.propensities),
      policy: d.policy ?? null,
      status: r.status,
      costUsd: r.cost_usd,
      latencyMs: r.latency_ms,
      ratings: byId.get(r.id) ?? [],
    };
  });
}

/** Answered requests in (after, untilTs] with an answer and no shadow comparison yet, oldest first. */
export async function shadowCandidates(db: Db, after: { ts: number; id: string }, untilTs: number, limit: number): Promise<ShadowCandidate[]> {
  const rows = await db.all<{
    id: string; ts: number; query_text: string; features_json: string; final_model: string; answer: string;
    decision_json: string | null; input_tokens: number; output_tokens: number;
  }>(
    `SELECT q.id, q.ts, q.query_text, q.features_json, q.final_model, q.answer, q.decision_json, q.input_tokens, q.output_tokens
     FROM queries q
     WHERE (q.ts, q.id) > (?, ?) AND q.ts <= ? AND q.status = 'ok' AND q.final_model IS NOT NULL AND q.answer IS NOT NULL
       AND q.endpoint <> '${SHADOW_ENDPOINT}'
       AND NOT EXISTS (SELECT 1 FROM shadow_comparisons s WHERE s.request_id = q.id)
     ORDER BY q.ts ASC, q.id ASC LIMIT ?`,
    [after.ts, after.id, untilTs, clampLimit(limit, 10 * MAX_PAGE)],
  );
  return rows.map((r) => {
    const d = r.decision_json === null ? null : (JSON.parse(r.decision_json) as StoredDecision);
    return {
      id: r.id, ts: r.ts, queryText: r.query_text, features: JSON.parse(r.features_json) as QueryFeatures,
      model: r.final_model, answer: r.answer, candidates: d && Array.isArray(d.candidates) ? d.candidates.map((c) => c.model) : [],
      inputTokens: r.input_tokens, outputTokens: r.output_tokens,
    };
  });
}

export async function shadowComparisons(db: Db, limit: number): Promise<StoredShadowComparison[]> {
  const rows = await db.all<{
    id: number; ts: number; request_id: string; request_model: string; shadow_model: string; shadow_request_id: string | null;
    verdict: StoredShadowComparison['verdict']; first_order: StoredShadowComparison['firstOrder']; second_order: StoredShadowComparison['secondOrder'];
    judge_model: string; cost_usd: number; reasoning: string | null; error: string | null; query_text: string | null;
  }>(
    `SELECT s.*, q.query_text FROM shadow_comparisons s LEFT JOIN queries q ON q.id = s.request_id
     ORDER BY s.ts DESC, s.id DESC LIMIT ?`,
    [clampLimit(limit)],
  );
  return rows.map((r) => ({
    id: r.id, ts: r.ts, requestId: r.request_id, requestModel: r.request_model, shadowModel: r.shadow_model,
    shadowRequestId: r.shadow_request_id, verdict: r.verdict, firstOrder: r.first_order, secondOrder: r.second_order,
    judgeModel: r.judge_model, costUsd: r.cost_usd, reasoning: r.reasoning, error: r.error, queryText: r.query_text ?? '',
  }));
}

export async function shadowSpend(db: Db, sinceTs: number): Promise<number> {
  return (await db.get<{ usd: number | null }>('SELECT SUM(cost_usd) AS usd FROM shadow_comparisons WHERE ts >= ?', [sinceTs]))?.usd ?? 0;
}

// ---- admin page: every query bounded by an index range (ts window or request id) and a LIMIT ----

const PERSON = `(${PERSON_SOURCES.map((s) => `'${s}'`).join(', ')})`;

/** SQL and parameters of the admin page's own reads (exported so a test can check their plans). */
export const adminSql = {
  nextUnrated: (before?: RequestCursor | null) => ({
    sql: `SELECT q.id FROM queries q
     WHERE q.status = 'ok' ${before ? 'AND (q.ts, q.id) < (?, ?)' : ''}
       AND NOT EXISTS (SELECT 1 FROM user_feedback f WHERE f.request_id = q.id AND f.source IN ${PERSON})
     ORDER BY q.ts DESC, q.id DESC LIMIT 1`,
    params: before ? [before.ts, before.id] : [],
  }),
  unratedSince: (sinceTs: number) => ({
    sql: `SELECT COUNT(*) AS n FROM queries q
     WHERE q.ts >= ? AND q.status = 'ok'
       AND NOT EXISTS (SELECT 1 FROM user_feedback f WHERE f.request_id = q.id AND f.source IN ${PERSON})`,
    params: [sinceTs],
  }),
  countSince: (sinceTs: number) => ({ sql: 'SELECT COUNT(*) AS n FROM queries WHERE ts >= ?', params: [sinceTs] }),
  latestRequest: () => ({ sql: 'SELECT ts, id FROM queries ORDER BY ts DESC, id DESC LIMIT 1', params: [] }),
  // From the small per-cell aggregate table, not from queries.
  domains: () => ({ sql: 'SELECT DISTINCT domain AS v FROM model_performance ORDER BY v LIMIT 100', params: [] }),
  languages: () => ({ sql: 'SELECT DISTINCT language AS v FROM model_performance ORDER BY v LIMIT 100', params: [] }),
};

export async function nextUnrated(db: Db, before?: RequestCursor | null): Promise<string | null> {
  const { sql, params } = adminSql.nextUnrated(before);
  return (await db.get<{ id: string }>(sql, params))?.id ?? null;
}

export async function unratedSince(db: Db, sinceTs: number): Promise<number> {
  const { sql, params } = adminSql.unratedSince(sinceTs);
  return (await db.get<{ n: number }>(sql, params))?.n ?? 0;
}

export async function countSince(db: Db, sinceTs: number): Promise<number> {
  const { sql, params } = adminSql.countSince(sinceTs);
  return (await db.get<{ n: number }>(sql, params))?.n ?? 0;
}

export async function latestRequest(db: Db): Promise<RequestCursor | null> {
  return (await db.get<RequestCursor>(adminSql.latestRequest().sql)) ?? null;
}

export async function seenCells(db: Db): Promise<{ domains: string[]; languages: string[] }> {
  const [domains, languages] = await Promise.all([
    db.all<{ v: string }>(adminSql.domains().sql),
    db.all<{ v: string }>(adminSql.languages().sql),
  ]);
  return { domains: domains.map((r) => r.v), languages: languages.map((r) => r.v) };
}

// ---- learner ----

export async function countAnswered(db: Db, fromTs: number, untilTs: number): Promise<number> {
  return (await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM queries WHERE ts >= ? AND ts <= ? AND final_model IS NOT NULL', [fromTs, untilTs]))?.n ?? 0;
}

export async function outputTokens(db: Db, fromTs: number, untilTs: number): Promise<Map<string, number>> {
  const rows = await db.all<{ id: string; output_tokens: number }>('SELECT id, output_tokens FROM queries WHERE ts >= ? AND ts <= ?', [fromTs, untilTs]);
  return new Map(rows.map((r) => [r.id, r.output_tokens]));
}

export async function nthNewestAnsweredTs(db: Db, untilTs: number, n: number): Promise<number | null> {
  const row = await db.get<{ ts: number }>(
    'SELECT ts FROM queries WHERE final_model IS NOT NULL AND ts <= ? ORDER BY ts DESC, id DESC LIMIT 1 OFFSET ?',
    [untilTs, Math.max(Math.trunc(n) - 1, 0)],
  );
  return row?.ts ?? null;
}

/** Versions of learned-state blobs (app_state keys `learned.v<N>`) stored now. */
export async function learnedBlobVersions(db: Db): Promise<number[]> {
  // LIKE is portable; the digits are checked here (GLOB was SQLite's own).
  const rows = await db.all<{ key: string }>("SELECT key FROM app_state WHERE key LIKE 'learned.v%'");
  return rows.map((r) => /^learned\.v(\d+)$/.exec(r.key)?.[1]).filter((v): v is string => v !== undefined).map(Number);
}

/** Versions that have priors rows outside [oldestKept, current]. */
export async function priorVersionsOutside(db: Db, oldestKept: number, current: number): Promise<number[]> {
  const rows = await db.all<{ version: number }>('SELECT DISTINCT version FROM routing_priors WHERE version < ? OR version > ?', [oldestKept, current]);
  return rows.map((r) => r.version);
}
