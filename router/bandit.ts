// Beta-prior bandit: per model x domain x language beliefs with back-off, posterior means and
// Thompson sampling. Pure functions plus a stage; randomness comes from an injected RNG.
import type { CandidateModel, LearnedState, PriorCell, QueryFeatures, RoutingStage, StageResult } from '../core/routing.ts';

/** Wildcard domain/language of marginal cells, as the learner writes them. */
export const ANY = '*';

export type PriorLevel = 'cell' | 'domain' | 'language' | 'model' | 'uniform';

export interface Belief {
  alpha: number;
  beta: number;
  level: PriorLevel;
}

/** Cells keyed for O(1) lookup; build once per learned state. */
export type PriorIndex = Map<string, PriorCell>;

const key = (model: string, domain: string, language: string) => `${model}\u0000${domain}\u0000${language}`;

export function buildPriorIndex(priors: readonly PriorCell[]): PriorIndex {
  const index: PriorIndex = new Map();
  for (const c of priors) {
    if (c.alpha > 0 && c.beta > 0 && Number.isFinite(c.alpha) && Number.isFinite(c.beta)) index.set(key(c.model, c.domain, c.language), c);
  }
  return index;
}

/** Observations a belief rests on beyond a uniform Beta(1,1). */
export function evidenceCount(b: Pick<Belief, 'alpha' | 'beta'>): number {
  return Math.max(0, b.alpha + b.beta - 2);
}

/**
 * The most specific belief with any evidence: exact cell, then model x domain, model x
 * language, model overall, else Beta(1,1).
 */
export function priorFor(priors: PriorIndex | readonly PriorCell[], model: string, domain: string, language: string): Belief {
  const index = priors instanceof Map ? priors : buildPriorIndex(priors);
  const levels: Array<[PriorLevel, string, string]> = [
    ['cell', domain, language],
    ['domain', domain, ANY],
    ['language', ANY, language],
    ['model', ANY, ANY],
  ];
  for (const [level, d, l] of levels) {
    const c = index.get(key(model, d, l));
    if (c && evidenceCount(c) > 0) return { alpha: c.alpha, beta: c.beta, level };
  }
  return { alpha: 1, beta: 1, level: 'uniform' };
}

export function betaMean(alpha: number, beta: number): number {
  return alpha / (alpha + beta);
}

export function betaVariance(alpha: number, beta: number): number {
  const s = alpha + beta;
  return (alpha * beta) / (s * s * (s + 1));
}

/** Small fast seeded PRNG in [0,1); deterministic tests and reproducible exploration. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal via Box-Muller (one of the pair; simplicity beats the saved draw). */
export function sampleNormal(rng: () => number): number {
  let u = rng();
  while (u <= Number.MIN_VALUE) u = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

/** Gamma(shape, 1) by Marsaglia-Tsang; shapes below 1 use the U^(1/shape) boost. */
export function sampleGamma(shape: number, rng: () => number): number {
  if (!(shape > 0)) throw new RangeError('gamma shape must be > 0');
  if (shape < 1) {
    let u = rng();
    while (u <= Number.MIN_VALUE) u = rng();
    return sampleGamma(shape + 1, rng) * Math.pow(u, 1 / shape);
  }
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = sampleNormal(rng);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rng();
    if (u < 1 - 0.0331 * x * x * x * x) return d * v;
    if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** Beta(alpha, beta) as X / (X + Y) with X ~ Gamma(alpha), Y ~ Gamma(beta). */
export function sampleBeta(alpha: number, beta: number, rng: () => number): number {
  const x = sampleGamma(alpha, rng);
  const y = sampleGamma(beta, rng);
  const s = x + y;
  return s > 0 ? x / s : betaMean(alpha, beta);
}

/** How much a back-off level is trusted relative to the exact cell. */
const LEVEL_TRUST: Record<PriorLevel, number> = { cell: 1, domain: 0.8, language: 0.6, model: 0.4, uniform: 0 };
/** Observations at which an exact cell's confidence reaches 0.5. */
const HALF_CONFIDENCE_COUNT = 10;

export interface BanditStageOptions {
  learned: () => LearnedState | null;
  /** Probability of scoring with a Thompson sample instead of the posterior mean. */
  explorationRate: number;
  rng: () => number;
}

/** Routing stage: posterior mean of each candidate's belief (or a Thompson sample when exploring). */
export class BanditStage implements RoutingStage {
  readonly name = 'bandit';
  private indexed: { state: LearnedState; index: PriorIndex } | null = null;
  /**
   * Posterior-mean results of the learned state in force, by domain and language, with the
   * candidates they were computed for: they change only with the state, and routing asks for
   * the same few cells over and over.
   */
  private means = new Map<string, Map<string, { ids: string[]; result: StageResult | null }>>();

  constructor(private readonly opts: BanditStageOptions) {}

  private index(state: LearnedState): PriorIndex {
    if (this.indexed?.state !== state) {
      this.indexed = { state, index: buildPriorIndex(state.priors) };
      this.means = new Map();
    }
    return this.indexed.index;
  }

  async score(_text: string, features: QueryFeatures, candidates: CandidateModel[]): Promise<StageResult | null> {
    return this.scoreSync(features, candidates);
  }

  /** The result may be shared with other calls for the same cell and candidates: read it, do not change it. */
  scoreSync(features: QueryFeatures, candidates: readonly CandidateModel[]): StageResult | null {
    const state = this.opts.learned();
    if (!state || state.priors.length === 0 || candidates.length === 0) return null;
    const index = this.index(state);
    const explore = this.opts.explorationRate > 0 && this.opts.rng() < this.opts.explorationRate;
    if (explore) return this.scoreCell(index, features, candidates, true);
    let byLanguage = this.means.get(features.domain);
    if (!byLanguage) this.means.set(features.domain, (byLanguage = new Map()));
    const known = byLanguage.get(features.language);
    if (known && known.ids.length === candidates.length && candidates.every((c, i) => c.id === known.ids[i])) return known.result;
    const result = this.scoreCell(index, features, candidates, false);
    byLanguage.set(features.language, { ids: candidates.map((c) => c.id), result });
    return result;
  }

  private scoreCell(index: PriorIndex, features: QueryFeatures, candidates: readonly CandidateModel[], explore: boolean): StageResult | null {
    const perModel: Record<string, number> = {};
    const support: Record<string, number> = {};
    const notes: string[] = [];
    let trust = 0;
    for (const c of candidates) {
      const b = priorFor(index, c.id, features.domain, features.language);
      perModel[c.id] = explore ? sampleBeta(b.alpha, b.beta, this.opts.rng) : betaMean(b.alpha, b.beta);
      const n = evidenceCount(b);
      support[c.id] = b.level === 'cell' ? n : 0;
      trust += LEVEL_TRUST[b.level] * (n / (n + HALF_CONFIDENCE_COUNT));
      if (b.level !== 'uniform') notes.push(`${c.id} ${perModel[c.id]!.toFixed(2)} (n=${Math.round(n)}, ${b.level})`);
    }
    if (notes.length === 0) return null;
    const confidence = trust / candidates.length;
    const mode = explore ? 'Thompson sample (exploring)' : 'posterior means';
    return { perModel, confidence, evidence: `${mode} for ${features.domain}/${features.language}: ${notes.join(', ')}`, support };
  }
}
