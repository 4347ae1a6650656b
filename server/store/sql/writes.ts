// Direct writes both SQL stores share (weights, state, learner runs, learned versions, shadow
// comparisons), each run by the caller inside one transaction. The batched request path is
// records.ts writeBatch with each engine's own statements.
import { MAX_COMMENT_CHARS, MAX_ERROR_CHARS, truncateOrNull } from '../records.ts';
import type { LearnedVersionWrite, LearnerRunKind, LearnerRunResult, ShadowComparison } from '../types.ts';
import { learnedBlobVersions, priorVersionsOutside, type SqlReader } from './queries.ts';

/** A connection inside a transaction. Parameters are `?`. */
export interface SqlTx extends SqlReader {
  run(sql: string, params?: readonly unknown[]): Promise<unknown>;
}

/** Priors rows per multi-row INSERT: 6 parameters each stays below SQLite's 999-parameter floor. */
const PRIOR_INSERT_CHUNK = 150;
export const PRIORS_VERSION_KEY = 'priors.version';

export function checkWeights(weights: { model: string; weight?: number }[]): void {
  for (const w of weights) {
    if (w.weight !== undefined && !(Number.isFinite(w.weight) && w.weight >= 0)) {
      throw new RangeError(`weight for ${w.model} must be a finite number >= 0`);
    }
  }
}

export async function upsertWeights(tx: SqlTx, weights: { model: string; weight?: number; enabled?: boolean }[], now: number): Promise<void> {
  checkWeights(weights);
  for (const w of weights) {
    const weight = w.weight ?? null;
    const enabled = w.enabled === undefined ? null : w.enabled ? 1 : 0;
    await tx.run(
      `INSERT INTO model_weights (model, weight, enabled, updated_at) VALUES (?, COALESCE(?, 1.0), COALESCE(?, 1), ?)
       ON CONFLICT (model) DO UPDATE SET weight = COALESCE(?, model_weights.weight), enabled = COALESCE(?, model_weights.enabled),
         updated_at = excluded.updated_at`,
      [w.model, weight, enabled, now, weight, enabled],
    );
  }
}

export function stateJson(key: string, value: unknown): string {
  const json = JSON.stringify(value);
  if (json === undefined) throw new TypeError(`state ${key}: value is not JSON-serialisable`);
  return json;
}

export async function upsertState(tx: SqlTx, key: string, value: unknown, now: number): Promise<void> {
  await tx.run(
    `INSERT INTO app_state (key, value_json, updated_at) VALUES (?, ?, ?)
     ON CONFLICT (key) DO UPDATE SET value_json = excluded.value_json, updated_at = excluded.updated_at`,
    [key, stateJson(key, value), now],
  );
}

export async function startLearnerRun(tx: SqlTx, startedAt: number, kind: LearnerRunKind): Promise<number> {
  const row = await tx.get<{ id: number }>("INSERT INTO learner_runs (started_at, status, kind) VALUES (?, 'running', ?) RETURNING id", [startedAt, kind]);
  if (!row) throw new Error('learner run was not recorded');
  return row.id;
}

export async function finishLearnerRun(tx: SqlTx, id: number, r: LearnerRunResult, now: number): Promise<void> {
  const json = (v: unknown): string | null => (v === undefined ? null : JSON.stringify(v));
  await tx.run(
    `UPDATE learner_runs SET finished_at = ?, status = ?, rows_read = ?, changes_json = ?, metrics_before_json = ?,
       metrics_after_json = ?, error = ? WHERE id = ?`,
    [now, r.status, r.rowsRead, json(r.changes), json(r.metricsBefore), json(r.metricsAfter), truncateOrNull(r.error, MAX_ERROR_CHARS), id],
  );
}

export async function insertShadowComparison(tx: SqlTx, c: ShadowComparison): Promise<void> {
  await tx.run(
    `INSERT INTO shadow_comparisons (ts, request_id, request_model, shadow_model, shadow_request_id, verdict, first_order,
       second_order, judge_model, cost_usd, reasoning, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [c.ts, c.requestId, c.requestModel, c.shadowModel, c.shadowRequestId, c.verdict, c.firstOrder, c.secondOrder, c.judgeModel,
      c.costUsd, truncateOrNull(c.reasoning, MAX_COMMENT_CHARS), truncateOrNull(c.error, MAX_ERROR_CHARS)],
  );
}

/** Priors of the version (replacing leftovers of a run that died before its swap), its state entries, then the priors pointer. */
export async function commitLearnedVersion(tx: SqlTx, w: LearnedVersionWrite, now: number): Promise<void> {
  if (!(Number.isInteger(w.version) && w.version > 0)) throw new RangeError(`learned version must be a positive integer, got ${w.version}`);
  const json = Object.entries(w.state).map(([key, value]) => [key, stateJson(key, value)] as const); // refuse before writing anything
  await tx.run('DELETE FROM routing_priors WHERE version = ?', [w.version]);
  for (let i = 0; i < w.priors.length; i += PRIOR_INSERT_CHUNK) {
    const chunk = w.priors.slice(i, i + PRIOR_INSERT_CHUNK);
    const params: unknown[] = [];
    for (const c of chunk) params.push(w.version, c.model, c.domain, c.language, c.alpha, c.beta);
    await tx.run(`INSERT INTO routing_priors (version, model, domain, language, alpha, beta) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?)').join(', ')}`, params);
  }
  for (const [key, value] of json) {
    await tx.run(
      `INSERT INTO app_state (key, value_json, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value_json = excluded.value_json, updated_at = excluded.updated_at`,
      [key, value, now],
    );
  }
  await upsertState(tx, PRIORS_VERSION_KEY, w.version, now);
}

/** Deletes priors rows and `learned.v<N>` blobs outside [oldestKept, current]; returns the versions dropped. */
export async function pruneLearnedVersions(tx: SqlTx, oldestKept: number, current: number): Promise<number[]> {
  const pruned = new Set(await priorVersionsOutside(tx, oldestKept, current));
  await tx.run('DELETE FROM routing_priors WHERE version < ? OR version > ?', [oldestKept, current]);
  for (const v of await learnedBlobVersions(tx)) {
    if (v >= oldestKept && v <= current) continue;
    await tx.run('DELETE FROM app_state WHERE key = ?', [`learned.v${v}`]);
    pruned.add(v);
  }
  return [...pruned].sort((a, b) => a - b);
}
