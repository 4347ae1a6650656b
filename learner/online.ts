// Online replay (`npm run eval -- --online`): learning under partial feedback, as production has it.
// Queries arrive in a seeded order over N days; the production router picks a model for each and
// only that model's outcome is revealed, rated for a seeded share; the learner runs every night.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { mulberry32 } from '../router/bandit.ts';
import { extractFeatures } from '../router/features.ts';
import { createRouter } from '../router/index.ts';
import { createTextIndex, KnnStage, loadTextIndex } from '../router/knn.ts';
import type { CandidateModel } from '../core/routing.ts';
import { estimateTokens, loadDataset, modelCosts, restrictModels, shuffled, type DatasetRow } from './eval-data.ts';
import type { EvalDeps } from './eval.ts';
import { runLearner } from './job.ts';
import { loadLearnedState } from './state.ts';

export interface OnlineOptions {
  datasetPath: string;
  seed: number;
  /** Days the stream is cut into (default 10); the learner runs at the end of each. */
  days?: number;
  /** Share of answers rated, by a seeded coin per query that does not depend on the model (default 0.2). */
  ratedFraction?: number;
  models?: string[];
}

export interface StreamEntry {
  id: string;
  day: number;
  model: string;
  /** π(model | query) under the policy at that moment; 1 when the choice was deterministic. */
  propensity: number;
  rated: boolean;
  /** How the router decided (learned, knn, keywords, weights...). */
  method: string;
}

export interface DailyEntry {
  day: number;
  queries: number;
  quality: number;
  cost_usd: number;
  /** Share of the day's queries each model answered. */
  shares: Record<string, number>;
  /** Share of the day's choices that were exploration draws. */
  explored: number;
  learned_version: number | null;
}

export interface OnlineReport {
  mode: 'online';
  dataset: string;
  seed: number;
  days: number;
  rated_fraction: number;
  models: string[];
  stream: StreamEntry[];
  daily: DailyEntry[];
  /** The last three days against the blind mix at the same cost (what check-eval-report prints). */
  tail: { days: number[]; quality: number; cost_usd: number; blind_mix_quality: number; premium: number; shares: Record<string, number> };
  notes: string[];
}

const DAY_MS = 86_400_000;
/** Fixed clock: every replay of the same dataset and seed stores the same rows. */
const EPOCH = Date.UTC(2024, 0, 1);

/** The rating a revealed outcome gets: 1 + round(4 · score) (shared/data/README.md). */
export const onlineRating = (score: number): number => 1 + Math.round(4 * Math.min(1, Math.max(0, score)));

/** Best quality a blind mix of two single models reaches at total cost `cost` (-Infinity when none is that cheap). */
export function blindMixQualityAt(singles: readonly { quality: number; cost: number }[], cost: number): number {
  let best = -Infinity;
  for (const a of singles) {
    if (a.cost <= cost) best = Math.max(best, a.quality);
    for (const b of singles) {
      if (a.cost <= cost && b.cost > cost) best = Math.max(best, a.quality + ((cost - a.cost) / (b.cost - a.cost)) * (b.quality - a.quality));
    }
  }
  return best;
}

function summarise(rows: readonly DatasetRow[], entries: readonly StreamEntry[], models: readonly string[]) {
  const byId = new Map(rows.map((r) => [r.id, r]));
  let q = 0, c = 0;
  const counts: Record<string, number> = Object.fromEntries(models.map((m) => [m, 0]));
  for (const e of entries) {
    const o = byId.get(e.id)!.outcomes[e.model]!;
    q += o.score;
    c += o.cost_usd;
    counts[e.model]! += 1;
  }
  const n = Math.max(1, entries.length);
  const shares = Object.fromEntries(models.map((m) => [m, counts[m]! / n]));
  return { quality: entries.length ? q / entries.length : 0, cost: c, shares };
}

export async function runOnline(opts: OnlineOptions, deps: EvalDeps): Promise<OnlineReport> {
  const log = deps.log ?? (() => undefined);
  let ds = loadDataset(opts.datasetPath);
  if (opts.models?.length) ds = restrictModels(ds, opts.models);
  const days = opts.days ?? 10;
  const ratedFraction = opts.ratedFraction ?? 0.2;
  if (!(Number.isInteger(days) && days >= 1)) throw new Error(`--days must be a whole number >= 1, got ${days}`);
  if (!(ratedFraction >= 0 && ratedFraction <= 1)) throw new Error(`--rated-fraction must be between 0 and 1, got ${ratedFraction}`);
  const order = shuffled(ds.rows, mulberry32(opts.seed));
  // The rating coin: its own seeded stream, one draw per query in arrival order, blind to the model.
  const coin = mulberry32(opts.seed * 7919 + 17);
  const rated = order.map(() => coin() < ratedFraction);
  const costs = modelCosts(ds, ds.rows);
  const candidates: CandidateModel[] = ds.models.map((id) => ({
    id, description: '', tags: [], weight: 1, healthy: true, costPer1kInput: costs[id]!.per1kInput, costPer1kOutput: costs[id]!.per1kOutput,
  }));

  const dir = await mkdtemp(path.join(os.tmpdir(), 'switchyard-online-'));
  const store = await deps.openStore({ path: path.join(dir, 'online.db'), flushMs: 5, maxBatch: 5000 });
  try {
    let version: number | null = null;
    let fitted: number | undefined;
    const knn = new KnnStage(createTextIndex(deps.embedder), { k: () => fitted ?? 20 });
    const router = createRouter({
      config: deps.routing,
      embedder: deps.embedder,
      knnStage: knn,
      loadLearned: () => loadLearnedState(store, dir),
      rng: mulberry32(opts.seed * 31 + 5),
    });
    const stream: StreamEntry[] = [];
    const daily: DailyEntry[] = [];
    const dayOf = (i: number) => Math.min(days - 1, Math.floor((i * days) / order.length));
    let i = 0;
    for (let day = 0; day < days; day++) {
      const started = Date.now();
      const today: StreamEntry[] = [];
      let explored = 0;
      for (; i < order.length && dayOf(i) === day; i++) {
        const row = order[i]!;
        const ts = EPOCH + day * DAY_MS + 1000 + i;
        const requestId = `req_online_${String(i).padStart(6, '0')}`;
        const decision = await router.route({ requestId, text: row.query, depth: 1 }, candidates);
        const model = decision.selected;
        const propensity = decision.propensities?.[model] ?? 1;
        if (decision.policy === 'explore') explored++;
        const o = row.outcomes[model]!;
        store.recordRequest({
          id: requestId, ts, endpoint: 'online-replay', queryText: row.query, messageCount: 1, requestedModel: null, stream: false,
          features: extractFeatures(row.query, 1), finalModel: model, status: 'ok', httpStatus: 200, latencyMs: o.latency_ms ?? 0, answer: null,
          inputTokens: estimateTokens(row.query), outputTokens: Math.round(o.output_tokens), costUsd: o.cost_usd, error: null, demo: false,
        }, decision, []);
        if (rated[i]) store.recordFeedback({ requestId, ts: ts + 1, rating: onlineRating(o.score), comment: null, source: 'user' });
        const entry: StreamEntry = { id: row.id, day, model, propensity, rated: rated[i]!, method: decision.method };
        stream.push(entry);
        today.push(entry);
      }
      await store.flush();
      // The nightly run, then the router reloads as the server does after a run.
      const result = await runLearner({ store, dataDir: dir, embedder: deps.embedder, now: () => EPOCH + (day + 1) * DAY_MS, settleMs: 0, replay: false, optimism: deps.routing.optimism });
      if (result.status !== 'ok') throw new Error(`learner run of day ${day} failed: ${result.error}`);
      await router.reload();
      const state = router.learned();
      version = state?.version ?? null;
      fitted = state?.knnCalibration?.neighbours;
      if (state?.indexDir) {
        const index = await loadTextIndex(state.indexDir, deps.embedder);
        if (index) knn.useIndex(index);
      }
      const s = summarise(ds.rows, today, ds.models);
      daily.push({ day, queries: today.length, quality: s.quality, cost_usd: s.cost, shares: s.shares, explored: today.length ? explored / today.length : 0, learned_version: version });
      log(`day ${day}: ${today.length} queries, quality ${s.quality.toFixed(4)}, cost $${s.cost.toFixed(4)}, ` +
        `shares ${Object.entries(s.shares).map(([m, v]) => `${m} ${(100 * v).toFixed(0)}%`).join(', ')}; learner read ${result.rowsRead} rows (${Date.now() - started} ms)`);
    }

    const tailDays = Array.from({ length: Math.min(3, days) }, (_, k) => days - Math.min(3, days) + k);
    const tailEntries = stream.filter((e) => tailDays.includes(e.day));
    const t = summarise(ds.rows, tailEntries, ds.models);
    const tailRows = new Set(tailEntries.map((e) => e.id));
    const singles = ds.models.map((m) => {
      let q = 0, c = 0;
      for (const r of ds.rows) if (tailRows.has(r.id)) { q += r.outcomes[m]!.score; c += r.outcomes[m]!.cost_usd; }
      return { quality: tailEntries.length ? q / tailEntries.length : 0, cost: c };
    });
    const mix = blindMixQualityAt(singles, t.cost);
    return {
      mode: 'online',
      dataset: path.basename(ds.file),
      seed: opts.seed,
      days,
      rated_fraction: ratedFraction,
      models: ds.models,
      stream,
      daily,
      tail: { days: tailDays, quality: t.quality, cost_usd: t.cost, blind_mix_quality: mix, premium: t.quality - mix, shares: t.shares },
      notes: [
        'Each query is routed by the production router with its default preferences; only the chosen model\'s outcome is revealed, as a served request.',
        `A seeded coin per query (blind to the model) rates ${Math.round(100 * ratedFraction)}% of answers 1 + round(4 * score), as the client that asked; nothing else is rated.`,
        'The learner runs at the end of each day (npm run learn, incremental) and the router reloads its new version and kNN index.',
        'Exploration is the router\'s own (ROUTER_EXPLORATION, ε-greedy); propensity is the probability the policy gave the chosen model.',
      ],
    };
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** Terminal summary: one line per day, then the last three days against the blind mix. */
export function formatOnline(r: OnlineReport): string {
  const lines = [`online replay of ${r.dataset}: ${r.stream.length} queries over ${r.days} days, ${pct(r.rated_fraction)} rated (seed ${r.seed})`];
  for (const d of r.daily) {
    lines.push(`  day ${d.day}: quality ${d.quality.toFixed(4)}, cost $${d.cost_usd.toFixed(4)}, explored ${pct(d.explored)}; ` +
      Object.entries(d.shares).map(([m, v]) => `${m} ${pct(v)}`).join(', '));
  }
  const t = r.tail;
  lines.push(`days ${t.days.join(', ')}: quality ${t.quality.toFixed(4)} at cost $${t.cost_usd.toFixed(4)}; a blind mix at that cost: ${t.blind_mix_quality.toFixed(4)}; premium ${t.premium.toFixed(4)}`);
  lines.push(`days ${t.days.join(', ')} shares: ` + Object.entries(t.shares).map(([m, v]) => `${m} ${pct(v)}`).join(', '));
  return lines.join('\n');
}
