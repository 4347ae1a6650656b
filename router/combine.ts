// Fusion of stage opinions into a routing decision: a quality estimate per model, a cost (or
// latency) estimate, and a cheapest-within-threshold choice. Pure; randomness is injected.
import type { CandidateModel, KnobCalibration, LearnedState, RoutingDecision, RoutingMethod, RoutingPreference, ScoredCandidate, StageResult } from '../core/routing.ts';

/** A decision before the router adds features and timings. */
export type DecisionCore = Omit<RoutingDecision, 'features' | 'timings'>;

/** Stages the learned decision blends, with their labels in explanations. */
export const LEARNED_STAGES = ['knn', 'judge', 'bandit'] as const;
const STAGE_LABEL: Record<string, string> = { knn: 'kNN', judge: 'judge', bandit: 'priors', keywords: 'keywords' };

/** A neutral 0.5 belief with this much weight keeps models nobody has an opinion on comparable. */
const NEUTRAL_WEIGHT = 0.05;
const DEFAULT_OUTPUT_TOKENS = 300;
/** λ before the learner has fitted one: the prior weighs as much as 8 fully similar neighbours. */
const DEFAULT_PRIOR_STRENGTH = 8;
const EPS = 1e-9;

/** λ for knob t, interpolated in a calibration table (learner/knob.ts writes it). */
export function lambdaAt(cal: KnobCalibration, t: number): number {
  const x = Math.min(1, Math.max(0, t)) * (cal.lambdas.length - 1);
  const i = Math.floor(x);
  const j = Math.min(cal.lambdas.length - 1, i + 1);
  return cal.lambdas[i]! + (x - i) * (cal.lambdas[j]! - cal.lambdas[i]!);
}

/** The quality knob t in [0,1]: an explicit threshold wins, else it follows the preference. */
export function qualityKnob(prefer?: RoutingPreference, qualityThreshold?: number): number {
  if (qualityThreshold !== undefined && Number.isFinite(qualityThreshold)) return Math.min(1, Math.max(0, qualityThreshold));
  switch (prefer) {
    case 'quality': return 1;
    case 'cost': return 0.8;
    default: return 0.95;
  }
}

const CJK_RE = /[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]/g;

/** Rough token count: one per CJK character, one per four other characters. */
export function estimateTokens(text: string): number {
  const cjk = text.match(CJK_RE)?.length ?? 0;
  return Math.ceil(cjk + (text.length - cjk) / 4);
}

/** Estimated cost in dollars of answering with `c`. */
export function estimateCost(c: CandidateModel, inputTokens: number, avgOutputTokens?: number): number {
  return (inputTokens / 1000) * c.costPer1kInput + ((avgOutputTokens ?? DEFAULT_OUTPUT_TOKENS) / 1000) * c.costPer1kOutput;
}

export interface FusionInput {
  /** Already filtered to routable (healthy, weight > 0) models. */
  candidates: readonly CandidateModel[];
  /** Stage results by stage name (knn, judge, bandit); null = no opinion. */
  stages: Readonly<Record<string, StageResult | null | undefined>>;
  learned: LearnedState | null;
  inputTokens: number;
  prefer?: RoutingPreference;
  qualityThreshold?: number;
  /** Relative trust per stage on top of each stage's own confidence (default 1 each). */
  stageWeights?: Readonly<Record<string, number>>;
  /**
   * Optimism under uncertainty (default 0): candidates are ranked by q + optimism·√(q(1-q)/(1+n)),
   * n = the evidence near this query (kNN neighbour weight + the exact prior cell's count), so a
   * model nobody has tried on queries like this one gets tried instead of being judged by the
   * model-wide average forever. The bonus fades as evidence comes in.
   */
  optimism?: number;
}

interface Estimate {
  model: CandidateModel;
  quality: number;
  /** Cost in dollars, or latency in ms when preferring latency. */
  price: number;
  cost: number;
  parts: Record<string, number>;
}

function formatPrice(price: number, latency: boolean): string {
  return latency ? `${Math.round(price)} ms` : `$${price.toPrecision(2)}`;
}

/**
 * The learned decision: q(m) is the confidence-weighted blend of kNN, judge and bandit scores;
 * candidates are ranked by utility q/max q - λ(t)·price/max price with λ(t) = (1-t)/t (t = quality
 * knob); the first is the pick, the rest are its fallbacks. Null when no learned stage has an opinion.
 */
export function fuseLearned(input: FusionInput): DecisionCore | null {
  const { candidates, learned } = input;
  const active = LEARNED_STAGES.filter((name) => {
    const r = input.stages[name];
    return r && r.confidence > 0 && candidates.some((c) => r.perModel[c.id] !== undefined);
  });
  if (active.length === 0 || candidates.length === 0) return null;

  const latency = input.prefer === 'latency';
  const t = qualityKnob(input.prefer, input.qualityThreshold);
  const knownLatency = candidates.map((c) => learned?.avgLatencyMs[c.id]).filter((v): v is number => v !== undefined && Number.isFinite(v));
  const meanLatency = knownLatency.length ? knownLatency.reduce((a, b) => a + b, 0) / knownLatency.length : 0;

  // kNN and priors together: the neighbours' outcomes count as observations on top of the prior,
  // (λ·prior + Σ w·q) / (λ + Σ w), with λ fitted by the learner. One estimate, not two votes.
  const knnR = input.stages.knn;
  const banditR = input.stages.bandit;
  const shrink = knnR?.local && banditR && active.includes('knn') && active.includes('bandit')
    ? learned?.knnCalibration?.priorStrength ?? DEFAULT_PRIOR_STRENGTH
    : null;
  const trust = (name: string) => (input.stageWeights?.[name] ?? 1) * input.stages[name]!.confidence;

  const estimates: Estimate[] = candidates.map((c) => {
    const parts: Record<string, number> = {};
    let num = NEUTRAL_WEIGHT * 0.5;
    let den = NEUTRAL_WEIGHT;
    const prior = banditR?.perModel[c.id];
    const merged = shrink !== null && prior !== undefined && Number.isFinite(prior);
    if (merged) {
      const l = knnR!.local![c.id] ?? { weight: 0, sum: 0 };
      const q = (shrink * prior + l.sum) / (shrink + l.weight);
      const w = Math.max(trust('knn'), trust('bandit'));
      parts.bandit = prior;
      if (knnR!.perModel[c.id] !== undefined) parts.knn = knnR!.perModel[c.id]!;
      parts.knnPrior = q;
      num += w * q;
      den += w;
    }
    for (const name of active) {
      if (merged && (name === 'knn' || name === 'bandit')) continue;
      const r = input.stages[name]!;
      const score = r.perModel[c.id];
      if (score === undefined || !Number.isFinite(score)) continue;
      const w = trust(name);
      parts[name] = score;
      num += w * Math.min(1, Math.max(0, score));
      den += w;
    }
    const cost = estimateCost(c, input.inputTokens, learned?.avgOutputTokens[c.id]);
    const price = latency ? learned?.avgLatencyMs[c.id] ?? meanLatency : cost;
    let quality = num / den;
    const optimism = input.optimism ?? 0;
    if (optimism > 0) {
      const n = (knnR?.local?.[c.id]?.weight ?? 0) + (banditR?.support?.[c.id] ?? 0);
      const bonus = optimism * Math.sqrt((quality * (1 - quality)) / (1 + n));
      parts.estimate = quality;
      parts.bonus = bonus;
      quality = Math.min(1, quality + bonus);
    }
    parts.quality = quality;
    parts.cost = cost;
    if (latency) parts.latencyMs = price;
    return { model: c, quality, price, cost, parts };
  });

  // Utility trades relative quality against relative price: u = q/qmax - λ(t)·p/pmax with
  // λ(t) = (1-t)/t, so t = 1 is "best quality", t -> 0 is "cheapest". Picking the utility
  // maximiser (rather than the cheapest model above a quality bar) follows the Lagrangian of
  // "most quality for a budget"; the ranked rest are the fallbacks.
  //
  // Once the learner has calibrated the knob on this traffic (learned.knobCalibration), λ(t) is
  // read from its table and the utility is on absolute quality and absolute price:
  // u = q - λ·p/referenceCost.
  const qmax = Math.max(...estimates.map((e) => e.quality));
  const pmax = Math.max(...estimates.map((e) => e.price));
  const calibrated = !latency && learned?.knobCalibration ? learned.knobCalibration : null;
  const lambda = t >= 1 - EPS ? 0 : calibrated ? lambdaAt(calibrated, t) : t <= EPS ? 1e6 : (1 - t) / t;
  const byPriceThenQuality = (a: Estimate, b: Estimate) => a.price - b.price || b.quality - a.quality || a.model.id.localeCompare(b.model.id);
  // Calibrated prices are dollars against the learner's reference cost, so a short prompt is cheap
  // to send to a dear model and a long one is not (older calibrations: against this query's dearest).
  const pref = calibrated?.referenceCost !== undefined && calibrated.referenceCost > 0 ? calibrated.referenceCost : pmax;
  const utility = calibrated
    ? (e: Estimate) => e.quality - lambda * (pref > 0 ? e.price / pref : 0)
    : (e: Estimate) => (qmax > 0 ? e.quality / qmax : 0) - lambda * (pmax > 0 ? e.price / pmax : 0);
  for (const e of estimates) e.parts.utility = utility(e);
  const ordered = [...estimates].sort((a, b) => utility(b) - utility(a) || byPriceThenQuality(a, b));
  const chosen = ordered[0]!;
  const rest = ordered.slice(1);

  const ranked: ScoredCandidate[] = [chosen, ...rest].map((e) => ({ model: e.model.id, score: e.quality, parts: e.parts }));
  const confidence = 1 - active.reduce((acc, name) => acc * (1 - Math.min(1, (input.stageWeights?.[name] ?? 1) * input.stages[name]!.confidence)), 1);
  const method: RoutingMethod = active.length === 1 && active[0] !== 'bandit' ? active[0]! : 'learned';

  const best = estimates.reduce((a, b) => (b.quality > a.quality ? b : a));
  const choice = t >= 1 - EPS
    ? `best estimated quality: ${chosen.model.id} (q=${chosen.quality.toFixed(2)})`
    : `best quality for the ${latency ? 'latency' : 'cost'} (knob ${t.toFixed(2)}): ${chosen.model.id} (q=${chosen.quality.toFixed(2)}, ${formatPrice(chosen.price, latency)})` +
      (best !== chosen ? `; best was ${best.model.id} (q=${best.quality.toFixed(2)}, ${formatPrice(best.price, latency)})` : '');
  const evidence = active.map((name) => `${STAGE_LABEL[name]}: ${input.stages[name]!.evidence}`);
  return { method, selected: chosen.model.id, candidates: ranked, confidence, reasoning: [...evidence, choice].join('; ') };
}

/** Weighted random pick (weights > 0 assumed); the RNG is injected so tests are deterministic. */
export function weightedPick<T extends { weight: number }>(items: readonly T[], rng: () => number): T {
  const total = items.reduce((s, c) => s + Math.max(0, c.weight), 0);
  if (total <= 0) return items[0]!;
  let r = rng() * total;
  for (const item of items) {
    r -= Math.max(0, item.weight);
    if (r < 0) return item;
  }
  return items[items.length - 1]!;
}

const byWeight = (a: CandidateModel, b: CandidateModel) => b.weight - a.weight || a.id.localeCompare(b.id);

/** Weighted random choice among candidates; fallbacks by descending weight. */
export function decideByWeights(candidates: readonly CandidateModel[], rng: () => number): DecisionCore {
  const total = candidates.reduce((s, c) => s + c.weight, 0);
  const chosen = weightedPick(candidates, rng);
  const rest = candidates.filter((c) => c !== chosen).sort(byWeight);
  const ranked = [chosen, ...rest].map((c) => ({ model: c.id, score: total > 0 ? c.weight / total : 0, parts: { weight: c.weight } }));
  const propensities: Record<string, number> = {};
  for (const c of candidates) propensities[c.id] = total > 0 ? c.weight / total : 1 / candidates.length;
  return {
    propensities,
    policy: 'weighted',
    method: 'weights',
    selected: chosen.id,
    candidates: ranked,
    confidence: total > 0 ? chosen.weight / total : 0,
    reasoning: `weighted random choice: ${chosen.id} (weight ${chosen.weight} of ${total})`,
  };
}

/**
 * Keyword decision: the best-scoring matched models first (ties split by weighted random choice),
 * then the other matched models, then everyone else by weight. Null when nothing matched.
 */
export function decideByKeywords(candidates: readonly CandidateModel[], keywords: StageResult | null, rng: () => number): DecisionCore | null {
  if (!keywords) return null;
  const matched = candidates.filter((c) => keywords.perModel[c.id] !== undefined);
  if (matched.length === 0) return null;
  const score = (c: CandidateModel) => keywords.perModel[c.id] ?? 0;
  const top = Math.max(...matched.map(score));
  const ties = matched.filter((c) => score(c) >= top - EPS);
  const chosen = weightedPick(ties, rng);
  const tieWeight = ties.reduce((s, c) => s + Math.max(0, c.weight), 0);
  const shares: Record<string, number> = {};
  for (const c of ties) shares[c.id] = tieWeight > 0 ? Math.max(0, c.weight) / tieWeight : 1 / ties.length;
  const otherMatched = matched.filter((c) => c !== chosen).sort((a, b) => score(b) - score(a) || byWeight(a, b));
  const unmatched = candidates.filter((c) => keywords.perModel[c.id] === undefined).sort(byWeight);
  const ranked = [chosen, ...otherMatched, ...unmatched].map((c) => ({ model: c.id, score: score(c), parts: { keywords: score(c), weight: c.weight } }));
  return { method: 'keywords', selected: chosen.id, candidates: ranked, confidence: keywords.confidence, reasoning: `keywords: ${keywords.evidence}`, propensities: shares, policy: ties.length > 1 ? 'weighted' : 'greedy' };
}

/** A fixed first choice (explicit model or request rule), then the others by weight. */
export function decideFixed(method: RoutingMethod, model: string, others: readonly CandidateModel[], reasoning: string): DecisionCore {
  const rest = others.filter((c) => c.id !== model).sort(byWeight).map((c) => ({ model: c.id, score: 0 }));
  return { method, selected: model, candidates: [{ model, score: 1 }, ...rest], confidence: 1, reasoning, propensities: { [model]: 1 }, policy: 'fixed' };
}

/**
 * ε-greedy over a decision: with probability ε the first choice is a uniform draw among the
 * routable candidates (the rest keep their order as fallbacks), otherwise the decision's own pick.
 * The propensities are exact: π(m) = (1-ε)·base(m) + ε/n, where base is the decision's own
 * distribution (1 on a deterministic pick, the tie shares of a keyword pick, the weight shares of
 * a weighted pick). ε-greedy rather than Thompson sampling because its propensities are known in
 * closed form, which inverse-propensity weighting and off-policy evaluation need.
 */
export function explore(core: DecisionCore, routable: readonly CandidateModel[], epsilon: number, rng: () => number, base?: Record<string, number>): DecisionCore {
  const n = routable.length;
  const own = base ?? { [core.selected]: 1 };
  const eps = n > 1 ? Math.min(1, Math.max(0, epsilon)) : 0;
  const propensities: Record<string, number> = {};
  for (const c of routable) propensities[c.id] = (1 - eps) * (own[c.id] ?? 0) + eps / n;
  if (eps > 0 && rng() < eps) {
    const drawn = routable[Math.min(n - 1, Math.floor(rng() * n))]!.id;
    const first = core.candidates.find((c) => c.model === drawn) ?? { model: drawn, score: 0 };
    const candidates = [first, ...core.candidates.filter((c) => c.model !== drawn)];
    const reasoning = drawn === core.selected ? core.reasoning : `exploring (ε=${eps}): ${drawn} drawn at random instead of ${core.selected}; ${core.reasoning}`;
    return Object.assign({}, core, { selected: drawn, candidates, reasoning, propensities, policy: 'explore' as const });
  }
  // Object.assign rather than a spread: V8 (Node 20) copies `{ ...core, x }` on a slow path, about
  // 1 us per property `core` lacks, and this runs for every routed request.
  return Object.assign({}, core, { propensities, policy: core.policy ?? 'greedy' });
}
