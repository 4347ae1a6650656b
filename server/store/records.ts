// What every Store implementation shares: the queued form of a request (its row as one JSON
// array), the limits records are truncated to, and the mapping of stored JSON back to contract types.
import type { QueryFeatures, RoutingDecision } from '../../core/routing.ts';
import type { FeedbackRecord, ModelCallRecord, RequestRecord, StoredParts, StoredRequest } from './types.ts';

export const MAX_QUERY_CHARS = 20_000;
export const MAX_ANSWER_CHARS = 50_000;
export const MAX_COMMENT_CHARS = 5_000;
export const MAX_ERROR_CHARS = 4_000;
/** Most rows one read returns (pages, learner runs, comparisons). */
export const MAX_PAGE = 1000;
export const DEFAULT_PAGE = 50;

export const truncate = (s: string, max: number): string => (s.length > max ? s.slice(0, max) : s);
export const truncateOrNull = (s: string | null | undefined, max: number): string | null =>
  (s == null ? null : s.length > max ? s.slice(0, max) : s);
export const clampLimit = (limit: number, max = MAX_PAGE): number => Math.min(Math.max(Math.trunc(limit), 1), max);

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

/** Column order of a request row (requestItem) and of every engine's INSERT. */
export const QUERY_ROW_COLUMNS = [
  'id', 'ts', 'endpoint', 'query_text', 'message_count', 'requested_model', 'stream', 'language', 'domain', 'complexity',
  'features_json', 'final_model', 'status', 'http_status', 'latency_ms', 'answer', 'input_tokens', 'output_tokens', 'cost_usd',
  'error', 'demo', 'client_key_hash', 'decision_json', 'calls_json', 'method', 'correlation_id', 'owner', 'parts_json',
] as const;
/** Row positions that hold JSON objects (features, decision, attempts, parts), stored as their JSON text. */
export const QUERY_NESTED: readonly number[] = [10, 22, 23, 27];

/**
 * An escaped NUL or lone surrogate in JSON.stringify's output (which escapes exactly those, and
 * writes paired surrogates as they are), not preceded by an escaping backslash.
 */
const UNSTORABLE = /(?<!\\)((?:\\\\)*)\\u(?:0000|d[89a-f][0-9a-f]{2})/g;

/**
 * JSON for a batch insert. SQLite's JSON functions end a text at NUL and turn a lone surrogate into
 * invalid UTF-8; PostgreSQL refuses both in text: each is stored as U+FFFD.
 */
export function rowJson(value: unknown): string {
  const json = JSON.stringify(value);
  return /\\u(?:0000|d[89a-f])/.test(json) ? json.replace(UNSTORABLE, '$1\\ufffd') : json;
}

/** The stored form of a routing decision (queries.decision_json): the decision without its features. */
export type StoredDecision = Omit<RoutingDecision, 'features'>;

/** The stored form of an attempt (one element of queries.calls_json). */
export type StoredCall = Omit<ModelCallRecord, 'requestId'>;

/** A decision as stored back in the contract shape, with its request's features. */
export function storedDecision(d: StoredDecision | null, features: QueryFeatures): RoutingDecision | null {
  if (d === null) return null;
  return {
    method: d.method, selected: d.selected, candidates: d.candidates, confidence: d.confidence,
    reasoning: d.reasoning, features, timings: d.timings, judge: d.judge ?? null,
  };
}

/** Attempts as stored back in the contract shape. */
export function storedCalls(calls: StoredCall[], requestId: string): ModelCallRecord[] {
  return calls.map((c) => ({ requestId, ...c }));
}

/** Probabilities as logged, keeping only numbers in [0, 1]; null when the decision has none. */
export function loggedPropensities(v: unknown): Record<string, number> | null {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return null;
  const out: Record<string, number> = {};
  for (const [model, p] of Object.entries(v as Record<string, unknown>)) {
    if (typeof p === 'number' && Number.isFinite(p) && p >= 0 && p <= 1) out[model] = p;
  }
  return Object.keys(out).length > 0 ? out : null;
}

/** Methods whose choice was not the routing policy's: left out of the decision log. */
export const NOT_POLICY_METHODS = ['explicit', 'request_rules'] as const;
/** Endpoint of the rows shadow answers are stored as. */
export const SHADOW_ENDPOINT = 'shadow';
/** Sources a person (or the offline harness) rates with: implicit and shadow signals do not count as a rating. */
export const PERSON_SOURCES = ['user', 'admin', 'eval'] as const;

/** The propensities and policy a decision logged (for off-policy evaluation), kept as given when present. */
function loggedPolicy(decision: RoutingDecision): { propensities?: unknown; policy?: unknown } {
  const d = decision as RoutingDecision & { propensities?: unknown; policy?: unknown };
  return { ...(d.propensities !== undefined ? { propensities: d.propensities } : {}), ...(d.policy !== undefined ? { policy: d.policy } : {}) };
}

/** A request record with its texts cut to the stored limits. */
export function boundedRequest(req: RequestRecord): RequestRecord {
  return {
    ...req,
    queryText: truncate(req.queryText, MAX_QUERY_CHARS),
    answer: truncateOrNull(req.answer, MAX_ANSWER_CHARS),
    error: truncateOrNull(req.error, MAX_ERROR_CHARS),
  };
}

/** Feedback checked against the contract (throws RangeError) and its comment cut to the limit. */
export function checkedFeedback(fb: FeedbackRecord): FeedbackRecord {
  // People rate in whole stars; the offline harness may give a continuous score in the same range.
  const valid = fb.source === 'eval' ? Number.isFinite(fb.rating) : Number.isInteger(fb.rating);
  if (!['user', 'admin', 'implicit', 'eval', 'shadow'].includes(fb.source)) throw new RangeError(`unknown feedback source ${String(fb.source)}`);
  if (!valid || fb.rating < 1 || fb.rating > 5) {
    throw new RangeError(`rating must be ${fb.source === 'eval' ? 'a number' : 'an integer'} from 1 to 5, got ${fb.rating}`);
  }
  return { ...fb, comment: truncateOrNull(fb.comment, MAX_COMMENT_CHARS) };
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
    // Already bounded (storedParts); serialised with the rest of the row, once.
    req.parts ?? null,
  ];
  // Each attempt is evidence about its model; without attempts, the request speaks for its final model.
  const outcomes: RequestItem['outcomes'] = [];
  for (const c of calls) {
    if (c.status !== 'skipped') outcomes.push({ model: c.model, ok: c.status === 'ok', latencyMs: c.latencyMs, costUsd: c.costUsd });
  }
  if (outcomes.length === 0 && req.finalModel) {
    outcomes.push({ model: req.finalModel, ok: req.status === 'ok', latencyMs: req.latencyMs, costUsd: req.costUsd });
  }
  return { kind: 'request', id: req.id, row: rowJson(row), domain: f.domain, language: f.language, outcomes };
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
    parts: (r[27] as StoredParts | null | undefined) ?? null,
    decision: storedDecision(r[22] as StoredDecision | null, features),
    calls: storedCalls(r[23] as StoredCall[], item.id),
  };
}

/** The statements of one write batch, as each engine runs them inside one transaction. */
export interface BatchOps {
  /** Insert the request rows (rowJson arrays), skipping ids already stored; returns the ids inserted. */
  insertRequests(rows: string[]): Promise<string[]>;
  /** Ratings already stored for these requests. */
  storedRatings(requestIds: string[]): Promise<{ request_id: string; source: string; rating: number }[]>;
  /** Upsert [request_id, ts, rating, comment, source] rows: a new rating replaces the old, which is kept as prev_*. */
  upsertFeedback(rows: string[]): Promise<void>;
  /** The answering model and cell of those requests that have one. */
  answeringModels(requestIds: string[]): Promise<{ id: string; final_model: string; domain: string; language: string }[]>;
  /** Add [model, domain, language, successes, total, latency_sum_ms, rating_sum, rating_count, cost_usd, updated_at] deltas. */
  addPerformance(rows: string[]): Promise<void>;
}

interface CellDelta {
  model: string; domain: string; language: string;
  successes: number; total: number; latency: number; cost: number; ratingSum: number; ratingCount: number;
}

/**
 * Writes a batch through the engine's statements (the caller wraps this in one transaction):
 * request rows, ratings, and model_performance deltas folded in memory, upserted once per cell.
 * Returns the request ids that were already stored (ignored, and not counted again).
 */
export async function writeBatch(ops: BatchOps, items: QueueItem[], now: number): Promise<string[]> {
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

  const inserted = new Set(await ops.insertRequests(requests.map((r) => r.row)));
  // The first record with an id wins; later ones (same batch or already stored) are duplicates.
  const duplicates: string[] = [];
  for (const item of requests) {
    if (!inserted.delete(item.id)) {
      duplicates.push(item.id);
      continue;
    }
    for (const o of item.outcomes) {
      const delta = cell(o.model, item.domain, item.language);
      delta.successes += o.ok ? 1 : 0;
      delta.total += 1;
      delta.latency += o.latencyMs;
      delta.cost += o.costUsd;
    }
  }

  if (feedback.length > 0) {
    const rated = [...new Set(feedback.map(({ fb }) => fb.requestId))];
    // A replaced rating moves the running totals by the difference and does not count twice.
    const earlier = new Map((await ops.storedRatings(rated)).map((r) => [JSON.stringify([r.request_id, r.source]), r.rating]));
    await ops.upsertFeedback(feedback.map(({ fb }) => rowJson([fb.requestId, fb.ts, fb.rating, fb.comment, fb.source])));
    // The answering model is read back: its request was written in this batch or an earlier one.
    const byId = new Map((await ops.answeringModels(rated)).map((r) => [r.id, r]));
    for (const { fb } of feedback) {
      const r = byId.get(fb.requestId);
      if (!r) continue;
      const delta = cell(r.final_model, r.domain, r.language);
      const old = earlier.get(JSON.stringify([fb.requestId, fb.source]));
      delta.ratingSum += fb.rating - (old ?? 0);
      delta.ratingCount += old === undefined ? 1 : 0;
    }
  }

  if (cells.size > 0) {
    await ops.addPerformance([...cells.values()].map((d) => rowJson([
      d.model, d.domain, d.language, d.successes, d.total, d.latency, d.ratingSum, d.ratingCount, d.cost, now,
    ])));
  }
  return duplicates;
}
