// Off-policy evaluation: what quality and cost another routing policy would have had on the
// traffic the gateway logged, from each decision's logged propensity. Pure: no I/O, no clock.
//
// Estimators (value V(π) = E_x Σ_a π(a|x) r(x,a)), each with a normal-approximation interval over
// its per-row terms and, on request, a seeded percentile bootstrap:
//   IPS    mean of w_i r_i, w_i = π(a_i|x_i) / μ_i            unbiased when μ_i > 0 wherever π > 0
//   SNIPS  Σ w_i r_i / Σ w_i                                  slightly biased, far less variance
//   DR     mean of Σ_a π(a|x_i) r̂(x_i,a) + w_i (r_i - r̂(x_i,a_i))   unbiased if either μ or r̂ is right
// Quality is estimated on rated rows only (rewards exist nowhere else); the rating coin does not
// depend on the model served, so the rated rows are an unbiased sample of the logged contexts.
// Cost is observed on every row, so cost estimates use every row.

import { mulberry32 } from '../router/bandit.ts';
import type { QueryFeatures } from '../core/routing.ts';

/** What the logging policy saw when it decided. */
export interface LoggedContext {
  text: string;
  features: QueryFeatures;
  /** Models the policy could choose from (the decision's candidates). */
  candidates: string[];
}

/** One logged routing decision and what came of it. */
export interface LoggedDecision {
  id: string;
  context: LoggedContext;
  /** The model the logging policy chose (and that served the request). */
  chosen: string;
  /** μ(chosen | context) under the logging policy, in (0, 1]. */
  propensity: number;
  /** μ(a | context) for every candidate, when the decision logged them. */
  propensities?: Record<string, number> | null;
  /** Quality in [0, 1]; null when unobserved (unrated). */
  reward: number | null;
  /** Cost of the served call in USD. */
  costUsd: number;
}

/** π(a | context) per candidate; missing models have probability 0. Should sum to 1. */
export type TargetPolicy = (context: LoggedContext) => Record<string, number>;
/** Predicted quality (or cost, for a cost model) of serving `model` for this context. */
export type OutcomeModel = (context: LoggedContext, model: string) => number;

export interface Interval {
  low: number;
  high: number;
}

export interface Estimate {
  value: number;
  /** Normal approximation over the per-row terms at the chosen level. */
  interval: Interval;
  /** Standard error of `value`. */
  stdError: number;
  /** Percentile bootstrap interval, when asked for. */
  bootstrap?: Interval;
}

export interface MetricEstimate {
  ips: Estimate;
  snips: Estimate;
  /** Present when a reward (or cost) model was given. */
  dr?: Estimate;
  /** Rows the estimate rests on. */
  rows: number;
  /** Kish effective sample size of the importance weights, (Σw)² / Σw². */
  ess: number;
  /** Rows whose weight was clipped to `maxWeight` (each clip biases IPS/DR downwards a little). */
  clipped: number;
  maxWeight: number;
  /** Mean Σw / n: near 1 when π is well supported by μ; far from 1 warns of missing support. */
  meanWeight: number;
}

export interface PolicyEstimate {
  quality: MetricEstimate;
  cost: MetricEstimate;
  /**
   * Mean target-policy mass on models the logging policy gave probability 0 (no logged
   * propensities: every model but the chosen one). No estimator sees outcomes there; a high value
   * means the log cannot tell what this policy would do, whatever the intervals say.
   */
  unsupportedMass: number;
  /** Share of rows where the target's most probable model is the logged choice. */
  agreement: number;
}

export interface OpeOptions {
  /** Confidence level of the intervals (default 0.95). */
  level?: number;
  /** Importance weights above this are clipped to it and counted (default: no clipping). */
  maxWeight?: number;
  rewardModel?: OutcomeModel;
  /** Cost per model for DR on cost; default: each model's mean logged cost (0 if never served). */
  costModel?: OutcomeModel;
  /** Percentile bootstrap with this many resamples and a seeded RNG (default: none). */
  bootstrap?: { samples: number; seed: number };
}

const EPS = 1e-12;

/** Standard normal quantile (Acklam's rational approximation, |error| < 1.2e-9). */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`quantile of ${p}`);
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p > 1 - lo) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
    (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

/** Seeded PRNG (mulberry32, as the router uses) so bootstrap intervals are reproducible. */
export const seededRng = mulberry32;

const mean = (xs: readonly number[]): number => (xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : 0);

/** Sample standard error of the mean of `terms` (0 for fewer than two). */
function stdErrorOf(terms: readonly number[]): number {
  const n = terms.length;
  if (n < 2) return 0;
  const m = mean(terms);
  const v = terms.reduce((s, x) => s + (x - m) * (x - m), 0) / (n - 1);
  return Math.sqrt(v / n);
}

function normalEstimate(value: number, se: number, z: number): Estimate {
  return { value, stdError: se, interval: { low: value - z * se, high: value + z * se } };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.round(p * (sorted.length - 1))));
  return sorted[i]!;
}

/** Percentile bootstrap of a statistic over row indices. */
function bootstrapInterval(n: number, stat: (idx: Uint32Array) => number, opts: { samples: number; seed: number }, level: number): Interval {
  const rng = seededRng(opts.seed);
  const values: number[] = [];
  const idx = new Uint32Array(n);
  for (let b = 0; b < opts.samples; b++) {
    for (let i = 0; i < n; i++) idx[i] = Math.floor(rng() * n);
    values.push(stat(idx));
  }
  values.sort((x, y) => x - y);
  const alpha = (1 - level) / 2;
  return { low: percentile(values, alpha), high: percentile(values, 1 - alpha) };
}

/** π(a|x) of one model, from a policy's output (negative or non-finite mass counts 0). */
function prob(p: Record<string, number>, model: string): number {
  const v = p[model];
  return v !== undefined && Number.isFinite(v) && v > 0 ? v : 0;
}

/** Per-row ingredients for one target policy: the weight and the policy's distribution. */
interface Weighted {
  row: LoggedDecision;
  pi: Record<string, number>;
  /** Clipped importance weight. */
  w: number;
  clipped: boolean;
}

function weigh(log: readonly LoggedDecision[], policy: TargetPolicy, maxWeight: number): Weighted[] {
  return log.map((row) => {
    if (!(row.propensity > 0 && row.propensity <= 1)) throw new RangeError(`decision ${row.id}: propensity ${row.propensity} is not in (0, 1]`);
    const pi = policy(row.context);
    const raw = prob(pi, row.chosen) / row.propensity;
    return { row, pi, w: Math.min(raw, maxWeight), clipped: raw > maxWeight };
  });
}

/** IPS, SNIPS and (with an outcome model) DR of one metric over the given weighted rows. */
function estimateMetric(rows: readonly Weighted[], outcome: (r: LoggedDecision) => number, model: OutcomeModel | undefined, opts: Required<Pick<OpeOptions, 'level'>> & OpeOptions): MetricEstimate {
  const n = rows.length;
  const z = normalQuantile(1 - (1 - opts.level) / 2);
  const ws = rows.map((r) => r.w);
  const ys = rows.map((r) => outcome(r.row));
  const sumW = ws.reduce((s, w) => s + w, 0);
  const sumW2 = ws.reduce((s, w) => s + w * w, 0);

  const ipsTerms = rows.map((_, i) => ws[i]! * ys[i]!);
  const ips = normalEstimate(mean(ipsTerms), stdErrorOf(ipsTerms), z);

  const snipsValue = sumW > EPS ? ipsTerms.reduce((s, t) => s + t, 0) / sumW : 0;
  // Delta method: the SNIPS ratio's influence terms are w_i (y_i - V) / mean(w).
  const meanW = n > 0 ? sumW / n : 0;
  const snipsTerms = meanW > EPS ? rows.map((_, i) => (ws[i]! * (ys[i]! - snipsValue)) / meanW) : [];
  const snips = normalEstimate(snipsValue, stdErrorOf(snipsTerms), z);

  let dr: Estimate | undefined;
  let drTerms: number[] | null = null;
  if (model) {
    drTerms = rows.map((r, i) => {
      let direct = 0;
      for (const [m, p] of Object.entries(r.pi)) if (p > 0 && Number.isFinite(p)) direct += p * model(r.row.context, m);
      return direct + ws[i]! * (ys[i]! - model(r.row.context, r.row.chosen));
    });
    dr = normalEstimate(mean(drTerms), stdErrorOf(drTerms), z);
  }

  if (opts.bootstrap && n > 1) {
    const bs = opts.bootstrap;
    ips.bootstrap = bootstrapInterval(n, (idx) => { let s = 0; for (const i of idx) s += ipsTerms[i]!; return s / n; }, bs, opts.level);
    snips.bootstrap = bootstrapInterval(n, (idx) => {
      let num = 0, den = 0;
      for (const i of idx) { num += ipsTerms[i]!; den += ws[i]!; }
      return den > EPS ? num / den : 0;
    }, bs, opts.level);
    if (dr && drTerms) {
      const terms = drTerms;
      dr.bootstrap = bootstrapInterval(n, (idx) => { let s = 0; for (const i of idx) s += terms[i]!; return s / n; }, bs, opts.level);
    }
  }
  return {
    ips, snips, ...(dr ? { dr } : {}),
    rows: n,
    ess: sumW2 > EPS ? (sumW * sumW) / sumW2 : 0,
    clipped: rows.filter((r) => r.clipped).length,
    maxWeight: ws.reduce((m, w) => Math.max(m, w), 0),
    meanWeight: meanW,
  };
}

/** Each model's mean logged cost: the default direct model for DR on cost. */
export function meanCostModel(log: readonly LoggedDecision[]): OutcomeModel {
  const sums = new Map<string, { s: number; n: number }>();
  for (const r of log) {
    const e = sums.get(r.chosen) ?? { s: 0, n: 0 };
    e.s += r.costUsd;
    e.n += 1;
    sums.set(r.chosen, e);
  }
  return (_ctx, model) => {
    const e = sums.get(model);
    return e && e.n > 0 ? e.s / e.n : 0;
  };
}

/** Target mass on models the logging policy could not have chosen, averaged over rows. */
function unsupported(rows: readonly Weighted[]): number {
  if (rows.length === 0) return 0;
  let total = 0;
  for (const { row, pi } of rows) {
    for (const [m, p] of Object.entries(pi)) {
      if (!(p > 0)) continue;
      const logged = row.propensities ? prob(row.propensities, m) : m === row.chosen ? row.propensity : 0;
      if (logged <= 0) total += p;
    }
  }
  return total / rows.length;
}

const argmax = (p: Record<string, number>): string | null => {
  let best: string | null = null;
  let bestP = -Infinity;
  for (const [m, v] of Object.entries(p)) if (v > bestP) { best = m; bestP = v; }
  return best;
};

/** Quality (rated rows) and cost (all rows) of `policy` had it routed the logged traffic. */
export function estimatePolicy(log: readonly LoggedDecision[], policy: TargetPolicy, options: OpeOptions = {}): PolicyEstimate {
  const opts = { level: 0.95, ...options };
  if (!(opts.level > 0 && opts.level < 1)) throw new RangeError(`level must be in (0, 1), got ${opts.level}`);
  const weighted = weigh(log, policy, opts.maxWeight ?? Infinity);
  const rated = weighted.filter((r) => r.row.reward !== null);
  const clamp01 = (v: number) => Math.min(1, Math.max(0, v));
  const quality = estimateMetric(rated, (r) => clamp01(r.reward!), opts.rewardModel, opts);
  const cost = estimateMetric(weighted, (r) => r.costUsd, opts.costModel ?? meanCostModel(log), opts);
  const agree = weighted.filter((r) => argmax(r.pi) === r.row.chosen).length;
  return { quality, cost, unsupportedMass: unsupported(weighted), agreement: weighted.length ? agree / weighted.length : 0 };
}

export type EstimatorName = 'ips' | 'snips' | 'dr';

export interface Difference {
  estimator: EstimatorName;
  /** Estimated V(candidate) - V(baseline). */
  value: number;
  interval: Interval;
  rows: number;
}

/**
 * Paired difference V(candidate) - V(baseline) on the rated rows, with a normal interval over
 * per-row differences (both policies are judged on the same rows, so their noise mostly cancels).
 * DR when a reward model is given, else SNIPS (delta method).
 */
export function qualityDifference(log: readonly LoggedDecision[], candidate: TargetPolicy, baseline: TargetPolicy, options: OpeOptions = {}): Difference {
  const opts = { level: 0.95, ...options };
  const z = normalQuantile(1 - (1 - opts.level) / 2);
  const maxWeight = opts.maxWeight ?? Infinity;
  const rated = log.filter((r) => r.reward !== null);
  const a = weigh(rated, candidate, maxWeight);
  const b = weigh(rated, baseline, maxWeight);
  const n = rated.length;
  if (n === 0) return { estimator: opts.rewardModel ? 'dr' : 'snips', value: 0, interval: { low: -Infinity, high: Infinity }, rows: 0 };
  const y = rated.map((r) => Math.min(1, Math.max(0, r.reward!)));
  let terms: number[];
  let value: number;
  let estimator: EstimatorName;
  const model = opts.rewardModel;
  if (model) {
    estimator = 'dr';
    const drTerm = (x: Weighted, i: number) => {
      let direct = 0;
      for (const [m, p] of Object.entries(x.pi)) if (p > 0 && Number.isFinite(p)) direct += p * model(x.row.context, m);
      return direct + x.w * (y[i]! - model(x.row.context, x.row.chosen));
    };
    terms = a.map((x, i) => drTerm(x, i) - drTerm(b[i]!, i));
    value = mean(terms);
  } else {
    estimator = 'snips';
    const snips = (xs: Weighted[]) => {
      const sw = xs.reduce((s, x) => s + x.w, 0);
      const v = sw > EPS ? xs.reduce((s, x, i) => s + x.w * y[i]!, 0) / sw : 0;
      return { v, mw: sw / n };
    };
    const sa = snips(a);
    const sb = snips(b);
    value = sa.v - sb.v;
    terms = a.map((x, i) => (sa.mw > EPS ? (x.w * (y[i]! - sa.v)) / sa.mw : 0) - (sb.mw > EPS ? (b[i]!.w * (y[i]! - sb.v)) / sb.mw : 0));
  }
  const se = stdErrorOf(terms);
  return { estimator, value, interval: { low: value - z * se, high: value + z * se }, rows: n };
}
