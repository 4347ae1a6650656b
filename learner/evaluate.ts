// Off-policy evaluation of routing policies on stored traffic: the decision log as the estimators
// read it, a set of named policies (learned state at several knobs, always-cheapest, each model),
// their estimates, the premium over a blind mix, and the rule that gates a learned-state swap.
import { BanditStage } from '../router/bandit.ts';
import { fuseLearned } from '../router/combine.ts';
import type { CandidateModel, LearnedState } from '../core/routing.ts';
import type { DecisionLogRow, FeedbackSource } from '../core/store.ts';
import {
  estimatePolicy, qualityDifference, type Difference, type LoggedContext, type LoggedDecision, type OpeOptions,
  type OutcomeModel, type PolicyEstimate, type TargetPolicy,
} from './ope.ts';

/** Ratings that count as rewards: chosen by a coin that does not depend on the model served. */
export const REWARD_SOURCES: readonly FeedbackSource[] = ['user', 'admin', 'eval', 'shadow'];

export interface LogSummary {
  rows: number;
  rated: number;
  /** Decisions that logged no propensity for their choice (read as 1: a deterministic choice). */
  missingPropensity: number;
  /** Decisions that were exploration draws (policy 'explore'; for older logs, a propensity below 1). */
  explored: number;
  /** Explored decisions per routing method. */
  exploredByMethod: Record<string, number>;
  rowsByMethod: Record<string, number>;
  /** Requests answered by a fallback rather than the selected model. */
  fallbacks: number;
  /** Rows with only an implicit signal (not used as reward: it is only ever negative). */
  implicitOnly: number;
}

/**
 * Stored decisions as logged decisions. Reward = mean of the request's user, admin, eval and shadow
 * ratings mapped to [0, 1] by (r - 1) / 4; unrated rows keep reward null and count for cost only.
 * The action is the model the policy selected; its outcome includes any fallback, as a user sees it.
 */
export function toLoggedDecisions(rows: readonly DecisionLogRow[]): { log: LoggedDecision[]; summary: LogSummary } {
  const summary: LogSummary = { rows: 0, rated: 0, missingPropensity: 0, explored: 0, exploredByMethod: {}, rowsByMethod: {}, fallbacks: 0, implicitOnly: 0 };
  const log: LoggedDecision[] = [];
  for (const r of rows) {
    const logged = r.propensities?.[r.selected];
    const known = logged !== undefined && logged > 0;
    const propensity = known ? Math.min(1, logged) : 1;
    const rewards = r.ratings.filter((f) => REWARD_SOURCES.includes(f.source)).map((f) => Math.min(1, Math.max(0, (f.rating - 1) / 4)));
    const reward = rewards.length ? rewards.reduce((s, x) => s + x, 0) / rewards.length : null;
    summary.rows++;
    summary.rowsByMethod[r.method] = (summary.rowsByMethod[r.method] ?? 0) + 1;
    if (!known) summary.missingPropensity++;
    // An exploration draw when the decision says so; decisions logged before policies were named
    // count as exploring when their choice was not certain.
    if (r.policy === 'explore' || (typeof r.policy !== 'string' && propensity < 1)) {
      summary.explored++;
      summary.exploredByMethod[r.method] = (summary.exploredByMethod[r.method] ?? 0) + 1;
    }
    if (r.finalModel !== null && r.finalModel !== r.selected) summary.fallbacks++;
    if (reward !== null) summary.rated++;
    else if (r.ratings.some((f) => f.source === 'implicit')) summary.implicitOnly++;
    // Sorted: the logged order puts the choice first, and a target policy must not see the choice.
    const candidates = [...new Set([r.selected, ...r.candidates])].sort();
    log.push({
      id: r.id,
      context: { text: r.queryText, features: r.features, candidates },
      chosen: r.selected,
      propensity,
      propensities: known ? r.propensities : null,
      reward,
      costUsd: r.costUsd,
    });
  }
  return { log, summary };
}

export interface NamedPolicy {
  name: string;
  /** For the cost/quality frontier: the single model a fixed policy always picks. */
  model?: string;
  /** Knob setting, for learned-state policies. */
  knob?: number;
  policy: TargetPolicy;
}

/** The logged candidates of a context that the configuration still knows. */
function known(context: LoggedContext, models: ReadonlyMap<string, CandidateModel>): CandidateModel[] {
  return context.candidates.flatMap((id) => {
    const m = models.get(id);
    return m ? [m] : [];
  });
}

const pricePer1k = (m: CandidateModel) => m.costPer1kInput + m.costPer1kOutput;

/** Always `model` where it was a candidate; elsewhere the logged candidates' cheapest (said in the report). */
export function alwaysModel(model: string, models: readonly CandidateModel[], costOf?: (model: string) => number | undefined): NamedPolicy {
  const cheapest = alwaysCheapest(models, costOf).policy;
  return { name: `always ${model}`, model, policy: (c) => (c.candidates.includes(model) ? { [model]: 1 } : cheapest(c)) };
}

/**
 * The cheapest candidate of each context: by `costOf` (e.g. each model's mean logged cost) where
 * it knows the model, else by list price; ties and unknown models go by id.
 */
export function alwaysCheapest(models: readonly CandidateModel[], costOf?: (model: string) => number | undefined): NamedPolicy {
  const byId = new Map(models.map((m) => [m.id, m]));
  const price = (id: string) => costOf?.(id) ?? (byId.has(id) ? pricePer1k(byId.get(id)!) : Infinity);
  return {
    name: 'always cheapest',
    policy: (c) => {
      const pick = [...c.candidates].sort((a, b) => price(a) - price(b) || a.localeCompare(b))[0];
      return pick === undefined ? {} : { [pick]: 1 };
    },
  };
}

/**
 * What a learned state's router would pick, per logged context: the production fusion
 * (router/combine.ts) over the state's priors at quality knob `knob`, without exploration and
 * without kNN or the judge (their inputs are not in the log); where the priors have no opinion,
 * the weighted random choice, as probabilities. Stands in until router/ exposes policyFor(state).
 */
export function priorsPolicy(state: LearnedState, models: readonly CandidateModel[], knob: number, minConfidence = 0.35): TargetPolicy {
  const byId = new Map(models.map((m) => [m.id, m]));
  // The knob's calibration was fitted on the fused kNN + priors estimate; priors alone keep the
  // uncalibrated knob, so a knob setting means the same here for every state.
  const { knobCalibration: _fittedForKnn, ...priorsOnly } = state;
  state = priorsOnly;
  const bandit = new BanditStage({ learned: () => state, explorationRate: 0, rng: () => 0.5 });
  return (c) => {
    const candidates = known(c, byId).map((m) => ({ ...m, healthy: true }));
    if (candidates.length === 0) return {};
    const stage = bandit.scoreSync(c.features, candidates);
    const decision = fuseLearned({ candidates, stages: { bandit: stage }, learned: state, inputTokens: Math.ceil(c.text.length / 4), qualityThreshold: knob });
    if (decision && decision.confidence >= minConfidence) return { [decision.selected]: 1 };
    const weights = candidates.filter((m) => m.weight > 0);
    const total = weights.reduce((s, m) => s + m.weight, 0);
    return Object.fromEntries(weights.map((m) => [m.id, m.weight / total]));
  };
}

/**
 * Direct reward model for DR: the mean rated reward of each model per domain, shrunk towards
 * that model's overall mean and that towards the global mean (pseudo-count `strength`).
 */
export function cellRewardModel(log: readonly LoggedDecision[], strength = 5): OutcomeModel {
  const sums = new Map<string, { s: number; n: number }>();
  const add = (key: string, r: number) => {
    const e = sums.get(key) ?? { s: 0, n: 0 };
    e.s += r;
    e.n += 1;
    sums.set(key, e);
  };
  for (const row of log) {
    if (row.reward === null) continue;
    add('', row.reward);
    add(row.chosen, row.reward);
    add(`${row.chosen}\u0000${row.context.features.domain}`, row.reward);
  }
  const shrunk = (key: string, toward: number) => {
    const e = sums.get(key);
    return e ? (e.s + strength * toward) / (e.n + strength) : toward;
  };
  const g = sums.get('');
  const global = g && g.n > 0 ? g.s / g.n : 0.5;
  return (context, model) => shrunk(`${model}\u0000${context.features.domain}`, shrunk(model, global));
}

export interface PolicyReport extends PolicyEstimate {
  name: string;
  model?: string;
  knob?: number;
}

export interface BlindMixPoint {
  /** Quality of the best mix of two fixed models at the policy's estimated cost. */
  quality: number;
  /** Policy quality minus that. */
  premium: number;
  between: [string, string] | null;
}

/**
 * The blind mix at a cost: the upper frontier of the straight lines between fixed-model
 * (cost, quality) points, read at `cost`. Null outside the frontier's cost range.
 */
export function blindMixAt(points: readonly { name: string; cost: number; quality: number }[], cost: number): { quality: number; between: [string, string] } | null {
  let best: { quality: number; between: [string, string] } | null = null;
  for (const a of points) {
    for (const b of points) {
      if (a.cost > cost || b.cost < cost) continue;
      const t = b.cost > a.cost ? (cost - a.cost) / (b.cost - a.cost) : 0;
      const q = a.quality + t * (b.quality - a.quality);
      if (!best || q > best.quality) best = { quality: q, between: [a.name, b.name] };
    }
  }
  return best;
}

export interface EvaluationReport {
  summary: LogSummary;
  /** Estimator the headline numbers use: DR (with the cell reward model). */
  headline: 'dr';
  policies: (PolicyReport & { blindMix: BlindMixPoint | null })[];
}

/** Estimates for every policy on one log (DR with the cell reward model, SNIPS and IPS alongside). */
export function evaluatePolicies(log: readonly LoggedDecision[], policies: readonly NamedPolicy[], opts: OpeOptions = {}): PolicyReport[] {
  const rewardModel = opts.rewardModel ?? cellRewardModel(log);
  return policies.map((p) => ({
    name: p.name,
    ...(p.model !== undefined ? { model: p.model } : {}),
    ...(p.knob !== undefined ? { knob: p.knob } : {}),
    ...estimatePolicy(log, p.policy, { ...opts, rewardModel }),
  }));
}

/** evaluatePolicies plus each policy's premium over the blind mix of the fixed models. */
export function evaluationReport(log: readonly LoggedDecision[], summary: LogSummary, policies: readonly NamedPolicy[], opts: OpeOptions = {}): EvaluationReport {
  const reports = evaluatePolicies(log, policies, opts);
  const fixed = reports.filter((r) => r.model !== undefined).map((r) => ({ name: r.model!, cost: r.cost.dr!.value, quality: r.quality.dr!.value }));
  return {
    summary,
    headline: 'dr',
    policies: reports.map((r) => {
      const mix = r.model === undefined && fixed.length >= 1 ? blindMixAt(fixed, r.cost.dr!.value) : null;
      return { ...r, blindMix: mix ? { quality: mix.quality, premium: r.quality.dr!.value - mix.quality, between: mix.between } : null };
    }),
  };
}

export interface SwapGateOptions extends OpeOptions {
  /** How much worse (in quality, 0..1) the new state may be at the lower bound. Default 0.02. */
  tolerance?: number;
  /** Below this many rated decisions the log cannot judge, and the swap goes ahead. Default 50. */
  minRated?: number;
}

export interface SwapGateResult {
  swap: boolean;
  reason: string;
  difference: Difference | null;
}

/**
 * The swap rule: a new learned state replaces the current one unless the log shows it is worse.
 * With at least `minRated` rated decisions, swap iff the lower 95% bound of the paired DR estimate
 * of quality(new) - quality(current) is >= -tolerance. With fewer, the log cannot tell and the
 * swap goes ahead (otherwise a new installation could never learn): the reason says so.
 */
export function swapGate(log: readonly LoggedDecision[], candidate: TargetPolicy, current: TargetPolicy, opts: SwapGateOptions = {}): SwapGateResult {
  const tolerance = opts.tolerance ?? 0.02;
  const minRated = opts.minRated ?? 50;
  const rated = log.filter((r) => r.reward !== null).length;
  if (rated < minRated) return { swap: true, reason: `only ${rated} rated decisions (< ${minRated}): not enough to compare, swapping`, difference: null };
  const rewardModel = opts.rewardModel ?? cellRewardModel(log);
  const d = qualityDifference(log, candidate, current, { ...opts, rewardModel });
  const low = d.interval.low;
  const swap = low >= -tolerance;
  const fmt = (v: number) => (v >= 0 ? '+' : '') + v.toFixed(3);
  return {
    swap,
    reason: `quality(new) - quality(current) = ${fmt(d.value)} [${fmt(low)}, ${fmt(d.interval.high)}] by ${d.estimator} on ${d.rows} rated decisions: ` +
      (swap ? `lower bound >= -${tolerance}, swapping` : `lower bound < -${tolerance}, keeping the current state`),
    difference: d,
  };
}
