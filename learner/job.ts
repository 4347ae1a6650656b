// The nightly learner run: reads the rows stored since the last run in pages, updates priors,
// profiles and the kNN index, replays recent traffic before/after, and writes a new version.
import { createHash } from 'node:crypto';
import type { Embedder } from '../core/embedder.ts';
import { createTextIndex, loadTextIndex, routingIndexKind, type Outcome, type TextIndex } from '../router/knn.ts';
import type { KnnCalibration, KnobCalibration, PriorCell } from '../core/routing.ts';
import { calibrateKnob } from './knob.ts';
import { calibrateKnn, calibratePriorStrength, type QueryPrediction } from './calibrate.ts';
import { estimateTokens } from '../router/combine.ts';
import type { Store, TrainingRow } from '../core/store.ts';
import { acquireLearnerLock, type LearnerLock, type SharedLearnerLock } from './lock.ts';
import { shadowFailed, type ShadowStepResult } from './shadow.ts';
import { accumulateEvidence, correctEvidence, defaultPriorOptions, priorChanges, priorsFromEvidence, rowQuality } from './priors.ts';
import { accumulateTotals, buildProfiles, defaultProfileOptions, modelAverages, type RowWithTokens } from './profiles.ts';
import { replayMetrics, type ReplayMetrics } from './replay.ts';
import { loadLearnerSnapshot, pruneVersions, writeLearnedVersion, type LearnerMemory } from './state.ts';

export interface LearnerProgress {
  phase: 'read' | 'replay' | 'write';
  processed: number;
  /** Rows expected in this phase; null when the store cannot count them. */
  total: number | null;
}

export interface LearnerOptions {
  /** The router's ROUTER_OPTIMISM, so the knob is calibrated in the utility the router uses (default 0). */
  optimism?: number;
  store: Store;
  dataDir: string;
  /** Taken before the data dir's lock file, so one run at a time across instances (REDIS_URL). */
  sharedLock?: SharedLearnerLock;
  embedder: Embedder;
  /** Evidence half-life (default 14 days). */
  halfLifeDays?: number;
  now?: () => number;
  onProgress?: (p: LearnerProgress) => void;
  /** Recompute priors, profiles and the index from all stored rows. */
  full?: boolean;
  /** Replay recent traffic through the old and new priors (default true). */
  replay?: boolean;
  /** Rows per read (default 5000). */
  pageSize?: number;
  /** Rows replayed (default 2000). */
  replayRows?: number;
  /**
   * Rows younger than this are left for the next run (default 10 min): requests are stored when
   * they finish, with the time they started, so the newest rows may still be arriving.
   */
  settleMs?: number;
  /** Shadow comparisons (learner/shadow.ts), run at the end of the run on the settled requests. */
  shadow?: (untilTs: number) => Promise<ShadowStepResult>;
}

export interface LearnerRunResult {
  status: 'ok' | 'failed';
  /** learner_runs id, when the store records runs. */
  runId: number | null;
  /** The version in force after the run (unchanged when nothing new was read, or on failure). */
  version: number | null;
  previousVersion: number | null;
  full: boolean;
  /** Why an incremental run was turned into a full one, if it was. */
  fullReason: string | null;
  rowsRead: number;
  /** Ratings given since the last run to requests it had already learned from. */
  lateRatings: number;
  durationMs: number;
  changes: ReturnType<typeof priorChanges>;
  metricsBefore: ReplayMetrics | null;
  metricsAfter: ReplayMetrics | null;
  prunedVersions: number[];
  error: string | null;
  /** Problems that did not fail the run (e.g. old versions could not be pruned). */
  warnings: string[];
  /** The kNN-vs-prior trust fitted (or kept) by this run. */
  knnCalibration: KnnCalibration | null;
  /** The quality knob's calibration fitted (or kept) by this run. */
  knobCalibration: KnobCalibration | null;
  /** Pseudo-counts each prior cell borrows from its parent (fitted, or the default). */
  priorStrength: number | null;
  /** What the shadow step did, or why it is off; null when the run had none. */
  shadow?: ShadowStepResult | null;
}

interface Cursor { ts: number; ids: Set<string> }

const EMBED_CHUNK = 256;

/** Index key of a query: identical texts share one entry, so their outcomes are pooled. */
export function queryKey(text: string): string {
  return 'q:' + createHash('sha256').update(text.trim()).digest('hex').slice(0, 24);
}

/** The outcome the kNN index keeps for a row; the rating carries any implicit penalty. */
function outcomeOf(row: TrainingRow): Outcome {
  const o: Outcome = { model: row.model, success: row.success, latencyMs: row.latencyMs };
  const q = rowQuality(row);
  if (q !== null && (row.rating !== null || row.implicitNegative)) o.rating = 1 + 4 * q;
  return o;
}

/**
 * Stored rows after the cursor and up to `untilTs`, oldest first, page by page. Rows sharing the
 * boundary millisecond are never skipped nor read twice: the cursor keeps the ids read at its ts.
 */
async function* readPages(store: Store, from: Cursor, untilTs: number, pageSize: number, feedbackUntilTs?: number): AsyncGenerator<{ rows: TrainingRow[]; cursor: Cursor }> {
  let cursor: Cursor = { ts: from.ts, ids: new Set(from.ids) };
  for (;;) {
    const limit = pageSize + cursor.ids.size;
    const page = await store.trainingRows(cursor.ts - 1, limit, feedbackUntilTs);
    const rows = page.filter((r) => (r.ts > cursor.ts || (r.ts === cursor.ts && !cursor.ids.has(r.id))) && r.ts <= untilTs);
    if (rows.length > 0) {
      const last = rows[rows.length - 1]!.ts;
      const ids = last === cursor.ts ? new Set(cursor.ids) : new Set<string>();
      for (const r of rows) if (r.ts === last) ids.add(r.id);
      cursor = { ts: last, ids };
      yield { rows, cursor };
    }
    if (page.length < limit || page.some((r) => r.ts > untilTs) || rows.length === 0) return;
  }
}

async function countRows(store: Store, from: Cursor, untilTs: number): Promise<number | null> {
  try {
    return Math.max(0, (await store.countAnswered(from.ts, untilTs)) - from.ids.size);
  } catch {
    return null;
  }
}

/** Output tokens of the page's requests (TrainingRow does not carry them). */
async function withTokens(store: Store, rows: TrainingRow[]): Promise<RowWithTokens[]> {
  if (rows.length === 0) return rows;
  try {
    const tokens = await store.outputTokens(rows[0]!.ts, rows[rows.length - 1]!.ts);
    return rows.map((r) => ({ ...r, outputTokens: tokens.get(r.id) ?? null }));
  } catch {
    return rows;
  }
}

/**
 * Add one outcome per row to the index, grouped by query text. Only outcomes that carry quality
 * evidence are indexed (rated, failed, asked again): an answered, unrated request says nothing
 * about how good the answer was, so it would only make the index bigger.
 */
async function indexRows(index: TextIndex, rows: TrainingRow[]): Promise<void> {
  const byKey = new Map<string, { id: string; text: string; outcomes: Outcome[] }>();
  for (const r of rows) {
    if (rowQuality(r) === null) continue;
    const key = queryKey(r.queryText);
    const entry = byKey.get(key);
    if (entry) entry.outcomes.push(outcomeOf(r));
    else byKey.set(key, { id: key, text: r.queryText, outcomes: [outcomeOf(r)] });
  }
  const entries = [...byKey.values()];
  for (let i = 0; i < entries.length; i += EMBED_CHUNK) await index.addTexts(entries.slice(i, i + EMBED_CHUNK));
}

/** The last `n` rows up to `untilTs`, for the replay. */
async function recentRows(store: Store, n: number, untilTs: number, pageSize: number): Promise<TrainingRow[]> {
  let from: Cursor = { ts: -1, ids: new Set() };
  try {
    const ts = await store.nthNewestAnsweredTs(untilTs, n);
    if (ts !== null) from = { ts: ts - 1, ids: new Set() };
  } catch {
    // Without SQL access, read everything and keep the tail.
  }
  const out: TrainingRow[] = [];
  for await (const { rows } of readPages(store, from, untilTs, pageSize)) out.push(...rows);
  return out.slice(-n);
}

/**
 * What each model would cost on a query of a given size: per model, the least-squares line
 * cost = a + b·tokens (a, b ≥ 0) through its answered requests, tokens estimated from the query
 * text as the router does (its mean cost when the sizes do not vary). Prices differ per token, and
 * a long prompt costs more on every model: the knob trades quality against these dollars.
 */
export function costLines(rows: readonly TrainingRow[]): (text: string) => Record<string, number> {
  const sums = new Map<string, { n: number; x: number; y: number; xx: number; xy: number }>();
  for (const r of rows) {
    if (!r.success || !Number.isFinite(r.costUsd)) continue;
    const x = estimateTokens(r.queryText), y = r.costUsd;
    const e = sums.get(r.model) ?? { n: 0, x: 0, y: 0, xx: 0, xy: 0 };
    e.n++; e.x += x; e.y += y; e.xx += x * x; e.xy += x * y;
    sums.set(r.model, e);
  }
  const lines = [...sums.entries()].map(([model, e]) => {
    const vx = e.xx - (e.x * e.x) / e.n;
    let b = e.n >= 3 && vx > 1e-9 ? (e.xy - (e.x * e.y) / e.n) / vx : 0;
    let a = (e.y - b * e.x) / e.n;
    if (b < 0) { b = 0; a = e.y / e.n; }
    if (a < 0) { a = 0; b = e.xx > 0 ? e.xy / e.xx : 0; }
    return { model, a, b };
  });
  return (text) => {
    const x = estimateTokens(text);
    return Object.fromEntries(lines.map(({ model, a, b }) => [model, a + b * x]));
  };
}

const pricesOf = (cost: (text: string) => Record<string, number>) => (p: QueryPrediction) => cost(p.text ?? '');

/** What the index's vectors are made of: 'tfidf' for the built-in text index, else the embedder's name. */
const indexNameFor = (embedder: Embedder) => (routingIndexKind(embedder) === 'tfidf' ? 'tfidf' : embedder.name);

const emptyMemory = (now: number): LearnerMemory => ({ evidence: { at: now, cells: [] }, totals: { at: now, models: {} }, lastTs: -1, boundaryIds: [], rowsSeen: 0 });

async function loadIndex(dir: string | null, embedder: Embedder): Promise<{ index: TextIndex | null; reason: string | null }> {
  if (!dir) return { index: null, reason: 'the previous version has no kNN index' };
  try {
    const index = await loadTextIndex(dir, embedder);
    return index ? { index, reason: null } : { index: null, reason: `no kNN index in ${dir}` };
  } catch (err) {
    return { index: null, reason: `previous kNN index unusable (${(err as Error).message})` };
  }
}

/**
 * One learner run under the learner lock (throws LearnerBusyError when another run holds it).
 * Any other failure is recorded as a failed run and returned with status 'failed'; the previous
 * version stays in force because nothing is swapped until the very end.
 */
export async function runLearner(opts: LearnerOptions): Promise<LearnerRunResult> {
  const { store, dataDir, embedder } = opts;
  const clock = opts.now ?? Date.now;
  const started = clock();
  const shared = opts.sharedLock ? await opts.sharedLock.take() : null;
  let fileLock: LearnerLock;
  try {
    fileLock = await acquireLearnerLock(dataDir, { now: clock, store });
  } catch (err) {
    await shared?.release();
    throw err;
  }
  const lock = { release: async () => { await fileLock.release(); await shared?.release(); } };
  const result: LearnerRunResult = {
    status: 'failed', runId: null, version: null, previousVersion: null, full: Boolean(opts.full), fullReason: null,
    rowsRead: 0, lateRatings: 0, durationMs: 0, changes: [], metricsBefore: null, metricsAfter: null, prunedVersions: [], error: null, warnings: [], knnCalibration: null, knobCalibration: null, priorStrength: null,
  };
  try {
    result.runId = store.startLearnerRun ? await store.startLearnerRun(started) : null;
    try {
      await learn(opts, started, result);
      result.status = 'ok';
    } catch (err) {
      result.status = 'failed';
      result.error = err instanceof Error ? err.message : String(err);
    }
    if (opts.shadow) result.shadow = await opts.shadow(started - (opts.settleMs ?? 10 * 60_000)).catch((e: Error) => shadowFailed(e));
    result.durationMs = clock() - started;
    if (result.runId !== null && store.finishLearnerRun) {
      await store.finishLearnerRun(result.runId, {
        status: result.status,
        rowsRead: result.rowsRead,
        changes: { version: result.version, previousVersion: result.previousVersion, full: result.full, fullReason: result.fullReason, lateRatings: result.lateRatings, priors: result.changes, prunedVersions: result.prunedVersions, knnCalibration: result.knnCalibration, knob: result.knobCalibration ? { bestSingle: result.knobCalibration.bestSingle, queries: result.knobCalibration.queries } : null, priorStrength: result.priorStrength, shadow: result.shadow ?? null },
        metricsBefore: result.metricsBefore ?? undefined,
        metricsAfter: result.metricsAfter ?? undefined,
        error: result.error,
      });
    }
    return result;
  } finally {
    await lock.release();
  }
}

async function learn(opts: LearnerOptions, now: number, result: LearnerRunResult): Promise<void> {
  const { store, dataDir, embedder, onProgress } = opts;
  const halfLifeDays = opts.halfLifeDays ?? defaultPriorOptions.halfLifeDays;
  const priorOpts = { ...defaultProfileOptions, halfLifeDays };
  const pageSize = opts.pageSize ?? 5000;
  const untilTs = now - (opts.settleMs ?? 10 * 60_000);

  const snapshot = await loadLearnerSnapshot(store, dataDir);
  result.previousVersion = snapshot?.state.version ?? null;
  result.version = result.previousVersion;
  // Incremental only on top of a previous version whose index this embedder can extend.
  let index: TextIndex | null = null;
  if (!opts.full) {
    const previousEmbedder = snapshot?.memory.embedder;
    const indexName = indexNameFor(embedder);
    if (!snapshot) result.fullReason = 'first run';
    else if (previousEmbedder !== undefined && previousEmbedder !== indexName) result.fullReason = `the routing index changed from ${previousEmbedder} to ${indexName}`;
    else ({ index, reason: result.fullReason } = await loadIndex(snapshot.state.indexDir, embedder));
    result.full = index === null;
  }
  const full = result.full;
  index ??= createTextIndex(embedder);
  let memory = full || !snapshot ? emptyMemory(now) : snapshot.memory;

  const from: Cursor = { ts: memory.lastTs, ids: new Set(memory.boundaryIds) };
  const total = await countRows(store, from, untilTs);
  onProgress?.({ phase: 'read', processed: 0, total });
  let evidence = memory.evidence;
  let totals = memory.totals;
  let cursor = from;
  // Ratings given since the last run to requests it had already read. Feedback is cut at untilTs
  // like the rows (a rating is committed a little after its timestamp): rows of this run are read
  // with the ratings up to untilTs, and the next run applies the ones after.
  if (!full && memory.feedbackTs !== undefined && store.lateFeedbackRows) {
    const late = await store.lateFeedbackRows(memory.feedbackTs, untilTs, memory.lastTs);
    const boundary = new Set(memory.boundaryIds);
    const changed = late.filter(({ before, now: r }) => (r.ts < memory.lastTs || boundary.has(r.id)) && rowQuality(r, priorOpts) !== rowQuality(before, priorOpts));
    evidence = correctEvidence(evidence, changed, now, priorOpts);
    result.lateRatings = changed.length;
  }
  for await (const page of readPages(store, from, untilTs, pageSize, untilTs)) {
    evidence = accumulateEvidence(evidence, page.rows, now, priorOpts);
    totals = accumulateTotals(totals, await withTokens(store, page.rows), now, halfLifeDays);
    await indexRows(index, page.rows);
    cursor = page.cursor;
    result.rowsRead += page.rows.length;
    onProgress?.({ phase: 'read', processed: result.rowsRead, total });
  }
  // Nothing new: the current version stays as it is (an explicit --full still rebuilds).
  if (result.rowsRead === 0 && result.lateRatings === 0 && !opts.full) return;

  const window = await recentRows(store, opts.replayRows ?? 2000, untilTs, pageSize);
  // How strongly small cells lean on their parents, fitted on recent traffic (else the default).
  const shrinkFit = calibratePriorStrength(evidence, window, priorOpts);
  result.priorStrength = shrinkFit?.priorStrength ?? priorOpts.priorStrength;
  const priors = priorsFromEvidence(evidence, { ...priorOpts, priorStrength: result.priorStrength });
  const previousPriors: PriorCell[] = snapshot?.state.priors ?? [];
  result.changes = priorChanges(previousPriors, priors);
  if (opts.replay !== false) {
    onProgress?.({ phase: 'replay', processed: window.length, total: window.length });
    result.metricsBefore = replayMetrics(previousPriors, window, priorOpts);
    result.metricsAfter = replayMetrics(priors, window, priorOpts);
  }
  // How much to trust neighbours over priors, fitted on recent traffic; else keep the last fit.
  const fitted = await calibrateKnn({ index, priors, rows: window, keyOf: queryKey, optimism: opts.optimism ?? 0 });
  const knnCalibration: KnnCalibration | undefined = fitted ? { priorStrength: fitted.priorStrength, neighbours: fitted.neighbours, samples: fitted.samples, mse: fitted.mse, msePriorOnly: fitted.msePriorOnly } : snapshot?.state.knnCalibration;
  result.knnCalibration = knnCalibration ?? null;
  // What the quality knob means on this traffic; else keep the last calibration.
  const knobCalibration = (fitted ? calibrateKnob(fitted.predictions, pricesOf(costLines(window))) : null) ?? snapshot?.state.knobCalibration;
  result.knobCalibration = knobCalibration ?? null;

  memory = { evidence, totals, lastTs: cursor.ts, boundaryIds: [...cursor.ids], rowsSeen: memory.rowsSeen + result.rowsRead, feedbackTs: untilTs, embedder: indexNameFor(embedder) };
  onProgress?.({ phase: 'write', processed: 0, total: 1 });
  const finalIndex = index;
  const state = await writeLearnedVersion(store, dataDir, {
    createdAt: now,
    priors,
    profiles: buildProfiles(priors, totals, priorOpts),
    ...modelAverages(totals),
    ...(knnCalibration ? { knnCalibration } : {}),
    ...(knobCalibration ? { knobCalibration } : {}),
    memory,
    saveIndex: (dir) => finalIndex.save(dir),
  }, now);
  result.version = state.version;
  onProgress?.({ phase: 'write', processed: 1, total: 1 });
  // The new version is live: failing to delete old ones must not fail the run.
  result.prunedVersions = await pruneVersions(store, dataDir).catch((err: Error) => {
    result.warnings.push(`old versions not pruned: ${err.message}`);
    return [];
  });
}
