// Offline routing evaluation: trains the production learner on the train part of a dataset (as
// stored traffic in a fresh SQLite store) and replays the test part through the real router.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { KeywordRule, AppConfig } from '../server/config.ts';
import { openSqliteStore } from '../server/store/sqlite.ts';
import type { Embedder } from '../router/embedder.ts';
import { extractFeatures } from '../router/features.ts';
import { mulberry32 } from '../router/bandit.ts';
import { createRouter } from '../router/index.ts';
import type { JudgeStage } from '../router/judge.ts';
import { createTextIndex, KnnStage, loadTextIndex } from '../router/knn.ts';
import type { CandidateModel, LearnedState, Router } from '../router/types.ts';
import { runLearner } from './job.ts';
import { loadLearnedState } from './state.ts';
import {
  estimateTokens, loadDataset, modelCosts, restrictModels, scoreChoices, splitDataset,
  type Dataset, type DatasetRow,
} from './eval-data.ts';
import { costSavedAt95, headlineOf, type CategoryPremium, type EvalReport, type LearningCurvePoint, type ReportPoint, type ReportPolicy } from './eval-report.ts';

/**
 * Knob settings of the router sweep, cheapest to best. The knob is calibrated (t = the share of the
 * best reachable estimated quality to keep), so the frontier that matters lies at the top: 0.05
 * steps up to 0.7, 0.01 steps to 0.9, then 0.005 steps to 1.
 */
export const DEFAULT_KNOBS = [
  ...Array.from({ length: 14 }, (_, i) => i / 20),
  ...Array.from({ length: 20 }, (_, i) => Math.round((0.7 + i * 0.01) * 1000) / 1000),
  ...Array.from({ length: 21 }, (_, i) => Math.round((0.9 + i * 0.005) * 1000) / 1000),
];
export const DEFAULT_TRAIN_FRACTIONS = [0.1, 0.25, 0.5, 1];

export interface EvalOptions {
  datasetPath: string;
  seed: number;
  /** Share of queries held out for testing (default 0.3). */
  testFraction?: number;
  /** Restrict the catalogue to these models. */
  models?: string[];
  knobs?: number[];
  trainFractions?: number[];
}

export type RoutingConfig = AppConfig['routing'] & { keywordRules: KeywordRule[] };

export interface EvalDeps {
  embedder: Embedder;
  routing: RoutingConfig;
  /** Builds the judge for a learned state; absent or null: the judge policy is skipped. */
  makeJudge?: (learned: () => LearnedState | null) => JudgeStage | null;
  log?: (line: string) => void;
}

/** Score in [0,1] -> the rating fed to the learner: continuous, so (rating - 1) / 4 = score exactly. */
export const scoreToRating = (score: number): number => 1 + 4 * score;

/** Fixed clock for stored eval traffic: every run of the same eval stores the same rows. */
const EVAL_EPOCH = Date.UTC(2024, 0, 1);

interface Trained {
  state: LearnedState;
  knn: KnnStage;
  /** Prior shrinkage the learner fitted (null = default). */
  priorStrength: number | null;
  close(): Promise<void>;
}

/**
 * Store each train query as answered traffic, one request per model (final model = that model,
 * status ok, the dataset's cost and output tokens) with an 'eval' rating, then run the learner.
 */
async function train(rows: readonly DatasetRow[], ds: Dataset, deps: EvalDeps): Promise<Trained> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'switchyard-eval-'));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    const store = await openSqliteStore({ path: path.join(dir, 'eval.db'), flushMs: 5, maxBatch: 2000 });
    try {
      let ts = EVAL_EPOCH;
      for (const row of rows) {
        const features = extractFeatures(row.query, 1);
        for (const model of ds.models) {
          const o = row.outcomes[model]!;
          const id = `${row.id}#${model}`;
          ts += 1;
          store.recordRequest({
            id, ts, endpoint: 'eval', queryText: row.query, messageCount: 1, requestedModel: null, stream: false, features,
            finalModel: model, status: 'ok', httpStatus: 200, latencyMs: o.latency_ms ?? 0, answer: null,
            inputTokens: estimateTokens(row.query), outputTokens: Math.round(o.output_tokens), costUsd: o.cost_usd, error: null, demo: false,
          }, null, []);
          store.recordFeedback({ requestId: id, ts, rating: scoreToRating(o.score), comment: null, source: 'eval' });
        }
      }
      await store.flush();
      const result = await runLearner({ store, dataDir: dir, embedder: deps.embedder, now: () => ts + 1, settleMs: 0, replay: false });
      if (result.status !== 'ok') throw new Error(`learner run failed: ${result.error}`);
      const state = await loadLearnedState(store, dir);
      if (!state) throw new Error('learner wrote no state');
      const index = state.indexDir ? await loadTextIndex(state.indexDir, deps.embedder) : null;
      const knn = new KnnStage(index ?? createTextIndex(deps.embedder), { k: state.knnCalibration?.neighbours ?? 20 });
      return { state, knn, priorStrength: result.priorStrength, close: cleanup };
    } finally {
      await store.close();
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
}

function candidatesFor(ds: Dataset, trainRows: readonly DatasetRow[]): CandidateModel[] {
  const costs = modelCosts(ds, trainRows);
  return ds.models.map((id) => ({
    id, description: '', tags: [], weight: 1, healthy: true,
    costPer1kInput: costs[id]!.per1kInput, costPer1kOutput: costs[id]!.per1kOutput,
  }));
}

function point(knob: number | null, test: readonly DatasetRow[], choices: Record<string, string>): ReportPoint {
  const s = scoreChoices(test, choices);
  return { knob, quality: s.quality, cost_usd: s.costUsd, ...(s.latencyMs === null ? {} : { latency_ms: s.latencyMs }), choices };
}

async function sweep(router: Router, test: readonly DatasetRow[], candidates: CandidateModel[], knobs: readonly number[]): Promise<ReportPoint[]> {
  const choices: Record<string, string>[] = knobs.map(() => ({}));
  // Query-major, so stages that cache their last answer (kNN) work once per query, not per knob.
  for (const row of test) {
    for (let k = 0; k < knobs.length; k++) {
      const d = await router.route({ requestId: `eval:${row.id}`, text: row.query, depth: 1, qualityThreshold: knobs[k] }, candidates);
      choices[k]![row.id] = d.selected;
    }
  }
  const points = knobs.map((knob, k) => point(knob, test, choices[k]!));
  return points;
}

/** Routers for the learned policies: the full router, kNN alone and the judge alone. */
async function routersFor(trained: Trained, deps: EvalDeps, seed: number) {
  const config = { ...deps.routing, explorationRate: 0, optimism: 0 };
  const learned = () => trained.state;
  const judge = deps.makeJudge?.(learned) ?? null;
  const full = createRouter({ config, embedder: deps.embedder, knnStage: trained.knn, judge, loadLearned: async () => trained.state, rng: mulberry32(seed + 2) });
  // Single-stage policies show what each stage knows, so they are not gated by minConfidence.
  await full.reload();
  const knnOnly = createRouter({ config: { ...config, minConfidence: 0 }, embedder: deps.embedder, knnStage: trained.knn, rng: mulberry32(seed + 3) });
  const judgeOnly = judge ? createRouter({ config: { ...config, minConfidence: 0 }, judge, rng: mulberry32(seed + 4) }) : null;
  return { full, knnOnly, judgeOnly };
}

function fixedPolicies(ds: Dataset, test: readonly DatasetRow[], seed: number): ReportPolicy[] {
  const out: ReportPolicy[] = [];
  const rng = mulberry32(seed + 1);
  const random: Record<string, string> = {};
  for (const row of test) random[row.id] = ds.models[Math.min(ds.models.length - 1, Math.floor(rng() * ds.models.length))]!;
  out.push({ name: 'random', points: [point(null, test, random)] });
  const oracle: Record<string, string> = {};
  for (const row of test) {
    // Best score; ties go to the cheaper call, then to catalogue order.
    oracle[row.id] = ds.models.reduce((a, b) => {
      const oa = row.outcomes[a]!, ob = row.outcomes[b]!;
      return ob.score > oa.score || (ob.score === oa.score && ob.cost_usd < oa.cost_usd) ? b : a;
    });
  }
  out.push({ name: 'oracle', points: [point(null, test, oracle)] });
  for (const m of ds.models) out.push({ name: `single:${m}`, points: [point(null, test, Object.fromEntries(test.map((r) => [r.id, m])))] });
  return out;
}

/**
 * The headline restricted to each category's test queries (the router never reads categories).
 * A category `family/sub` counts under `family` (e.g. `mmlu/virology` under `mmlu`).
 */
function byCategory(policies: readonly ReportPolicy[], test: readonly DatasetRow[]): CategoryPremium[] {
  const groups = new Map<string, DatasetRow[]>();
  for (const row of test) {
    const c = row.category?.split('/')[0] || '(none)';
    groups.set(c, [...(groups.get(c) ?? []), row]);
  }
  return [...groups.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([category, rows]) => {
    const part = policies.map((p) => ({ name: p.name, points: p.points.map((pt) => point(pt.knob, rows, pick(pt.choices, rows))) }));
    const h = headlineOf(part);
    return { category, queries: rows.length, cost_saved_at_95: h.cost_saved_at_95, blind_mix_saved_at_95: h.blind_mix_saved_at_95, premium: h.premium };
  });
}

const pick = (choices: Record<string, string>, rows: readonly DatasetRow[]) => Object.fromEntries(rows.map((r) => [r.id, choices[r.id]!]));

export async function runEval(opts: EvalOptions, deps: EvalDeps): Promise<EvalReport> {
  const log = deps.log ?? (() => undefined);
  let ds = loadDataset(opts.datasetPath);
  if (opts.models?.length) ds = restrictModels(ds, opts.models);
  const testFraction = opts.testFraction ?? 0.3;
  const knobs = [...(opts.knobs ?? DEFAULT_KNOBS)].sort((a, b) => a - b);
  const fractions = [...(opts.trainFractions ?? DEFAULT_TRAIN_FRACTIONS)].sort((a, b) => a - b);
  const { train: trainRows, test } = splitDataset(ds.rows, opts.seed, testFraction);
  const candidates = candidatesFor(ds, trainRows);
  log(`dataset ${path.basename(ds.file)}: ${ds.rows.length} queries, ${ds.models.length} models; train ${trainRows.length}, test ${test.length} (seed ${opts.seed})`);

  const policies = fixedPolicies(ds, test, opts.seed);
  const skipped: EvalReport['skipped'] = [];
  const rulesRouter = createRouter({ config: { ...deps.routing, explorationRate: 0, optimism: 0 }, rng: mulberry32(opts.seed + 5) });
  const rules = await sweep(rulesRouter, test, candidates, [1]);
  policies.push({ name: 'rules', points: rules.map((p) => ({ ...p, knob: null })) });

  const perFraction: { fraction: number; size: number; points: ReportPoint[] }[] = [];
  for (const fraction of fractions) {
    const size = Math.max(1, Math.round(trainRows.length * fraction));
    const started = Date.now();
    const trained = await train(trainRows.slice(0, size), ds, deps);
    try {
      const routers = await routersFor(trained, deps, opts.seed);
      // Partial train fractions only feed the learning curve: every other knob is enough there.
      const last = fraction === fractions[fractions.length - 1];
      const curveKnobs = last ? knobs : knobs.filter((_, i) => i % 2 === 0 || i === knobs.length - 1);
      const points = await sweep(routers.full, test, candidates, curveKnobs);
      perFraction.push({ fraction, size, points });
      if (last) {
        policies.push({ name: 'router', points });
        policies.push({ name: 'knn', points: await sweep(routers.knnOnly, test, candidates, knobs) });
        if (routers.judgeOnly) policies.push({ name: 'judge', points: await sweep(routers.judgeOnly, test, candidates, knobs) });
        else skipped.push({ name: 'judge', reason: 'no judge configured (set OLLAMA_HOST with JUDGE_ENABLED)' });
      }
    } finally {
      await trained.close();
    }
    const cal = trained.state.knnCalibration;
    const fit = `; prior shrinkage ${trained.priorStrength ?? 'default'}` + (cal ? `; kNN fitted: k=${cal.neighbours ?? 20}, prior worth ${cal.priorStrength} neighbours (LOO mse ${cal.mse.toFixed(4)} vs prior alone ${cal.msePriorOnly.toFixed(4)}, ${cal.samples} pairs)` : '');
    log(`trained on ${size} queries (${Math.round(fraction * 100)}%) and routed ${test.length} test queries x ${knobs.length} knobs in ${Date.now() - started} ms${fit}`);
  }

  const headline = headlineOf(policies);
  const best = policies.find((p) => p.name === `single:${headline.best_single}`)!.points[0]!;
  const curveKnob = headline.router_knob ?? 1;
  const curve: LearningCurvePoint[] = perFraction.map((f) => {
    const at = f.points.find((p) => p.knob === curveKnob) ?? f.points[f.points.length - 1]!;
    const saved = costSavedAt95(f.points, best).saved;
    return {
      train_fraction: f.fraction, train_size: f.size, knob: at.knob ?? 1, quality: at.quality, cost_usd: at.cost_usd,
      cost_saved_at_95: saved, premium: saved - headline.blind_mix_saved_at_95, points: f.points,
    };
  });

  return {
    dataset: path.basename(ds.file),
    seed: opts.seed,
    test_fraction: testFraction,
    train_ids: trainRows.map((r) => r.id),
    test_ids: test.map((r) => r.id),
    models: ds.models,
    policies,
    learning_curve: curve,
    headline,
    by_category: byCategory(policies, test),
    skipped,
    notes: [
      'Each train query is stored once per model as answered traffic with an eval rating of 1 + 4 * score (continuous, so the learner sees quality = score exactly).',
      'The router knob is RouteRequest.qualityThreshold: 0 = cheapest acceptable, 1 = best estimated quality.',
      'rules = keyword rules, else weighted random choice (production fallback); knn and judge = that stage alone, not gated by minConfidence.',
      `learning_curve: the router trained on the first fraction of the shuffled train part, at knob ${curveKnob} (the headline knob, else 1); cost_saved_at_95 uses that fraction's whole sweep.`,
    ],
  };
}
