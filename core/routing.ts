// Router contracts shared by the gateway, the router stages, the learner and the eval harness.
// The gateway only sees `Router.route()`; stages implement `RoutingStage`.
import type { ClientSignal } from './stop-signal.ts';

export type Language = 'zh' | 'en' | 'ja' | 'ko' | 'ru' | 'es' | 'fr' | 'de' | 'code' | 'other';
export type Domain =
  | 'code' | 'math' | 'writing' | 'translation' | 'reasoning' | 'data' | 'science'
  | 'business' | 'health' | 'chat' | 'other';
export type Complexity = 'simple' | 'medium' | 'complex';
export type LengthBucket = 'xs' | 's' | 'm' | 'l' | 'xl';

export interface QueryFeatures {
  language: Language;
  /** Share of CJK characters etc. is folded into `language`; `mixed` flags several scripts. */
  mixed: boolean;
  domain: Domain;
  complexity: Complexity;
  lengthBucket: LengthBucket;
  chars: number;
  hasCode: boolean;
  /** Number of user turns in the conversation. */
  depth: number;
}

/** What the router knows of each model it may pick. */
export interface CandidateModel {
  id: string;
  description: string;
  tags: string[];
  weight: number;
  costPer1kInput: number;
  costPer1kOutput: number;
  /** Circuit closed or half-open. Unhealthy models are never chosen. */
  healthy: boolean;
}

export interface RouteRule {
  pattern: string;
  model: string;
}

export type RoutingPreference = 'quality' | 'cost' | 'latency' | 'balanced';

export interface RouteRequest {
  requestId: string;
  /** The text routed on: the last user message. */
  text: string;
  /** Number of user turns (for features). */
  depth: number;
  explicitModel?: string;
  routingRules?: RouteRule[];
  prefer?: RoutingPreference;
  /** 0..1 knob: 0 = cheapest acceptable, 1 = best quality regardless of cost. */
  qualityThreshold?: number;
}

export type RoutingMethod = 'explicit' | 'request_rules' | 'learned' | 'knn' | 'judge' | 'keywords' | 'weights';

export interface ScoredCandidate {
  model: string;
  score: number;
  /** Per-stage contributions, for the explanation. */
  parts?: Record<string, number>;
}

export interface RoutingDecision {
  method: RoutingMethod;
  /** First choice; `candidates` is the full fallback order (first === selected). */
  selected: string;
  candidates: ScoredCandidate[];
  /** 0..1 */
  confidence: number;
  reasoning: string;
  features: QueryFeatures;
  /** Milliseconds spent in each part (features, knn, judge, ...). */
  timings: Record<string, number>;
  judge?: { selectedModel: string; confidence: number; reasoning: string } | null;
  /**
   * π(m | query): the probability the policy gave each routable candidate at this moment (sums
   * to 1; the chosen model's entry is its propensity). Logged with the decision so the learner
   * can correct for its own choices (inverse-propensity weighting, off-policy evaluation).
   */
  propensities?: Record<string, number>;
  /** How the choice was drawn: 'greedy' (the best estimate), 'explore' (a uniform draw), 'fixed', 'weighted'. */
  policy?: 'greedy' | 'explore' | 'fixed' | 'weighted';
}

/** What a stage says about the candidates for one query. */
export interface StageResult {
  /** Scores in [0,1] per model id (missing = no opinion). */
  perModel: Record<string, number>;
  /** 0..1: how much this stage trusts its own opinion. */
  confidence: number;
  evidence: string;
  /**
   * Raw local evidence per model (kNN): total neighbour weight W and weighted quality sum S, so
   * fusion can shrink the local mean S/W toward the learned prior: (λ·prior + S) / (λ + W).
   */
  local?: Record<string, { weight: number; sum: number }>;
  /**
   * Evidence near this query per model, in observations (priors: the exact cell's count, 0 when
   * backed off to a coarser level; kNN: the neighbours' weight). Drives optimism under uncertainty.
   */
  support?: Record<string, number>;
}

export interface RoutingStage {
  readonly name: string;
  score(text: string, features: QueryFeatures, candidates: CandidateModel[], signal?: ClientSignal): Promise<StageResult | null>;
}

export interface Router {
  route(req: RouteRequest, candidates: CandidateModel[]): Promise<RoutingDecision>;
  /** Outcome of a served request, so online parts (kNN index) can grow. */
  observe?(outcome: RoutingOutcome): void;
  /** Ask the router to reload learned state (priors, profiles, index) from storage. */
  reload?(): Promise<void>;
  status?(): Record<string, unknown>;
  close?(): Promise<void>;
}

export interface RoutingOutcome {
  requestId: string;
  text: string;
  features: QueryFeatures;
  model: string;
  success: boolean;
  latencyMs: number;
  rating?: number;
}

/** Beta(alpha, beta) belief that `model` gives a good answer for queries of `domain` x `language`. */
export interface PriorCell {
  model: string;
  domain: string;
  language: string;
  alpha: number;
  beta: number;
}

/** What a model is good and bad at, in words and numbers; fed to the judge prompt. */
export interface ModelProfile {
  model: string;
  summary: string;
  strengths: string[];
  weaknesses: string[];
  successRate: number | null;
  avgRating: number | null;
  avgLatencyMs: number | null;
  samples: number;
}

/**
 * Everything the learner produces, versioned. The router swaps to a new version atomically
 * (write new, then swap); a failed learner run leaves the previous version in force.
 */
export interface LearnedState {
  version: number;
  createdAt: number;
  priors: PriorCell[];
  profiles: Record<string, ModelProfile>;
  /** Mean output tokens per model, for cost estimates. */
  avgOutputTokens: Record<string, number>;
  /** Mean latency per model in ms. */
  avgLatencyMs: Record<string, number>;
  /** Directory holding the kNN index for this version (router/knn.ts save/load), if built. */
  indexDir: string | null;
  /** Optional learned weights for keyword rules by rule name. */
  keywordRuleWeights?: Record<string, number>;
  /** How far to trust kNN neighbours over the priors, fitted by the learner (learner/calibrate.ts). */
  knnCalibration?: KnnCalibration;
  /** What the quality knob means on this traffic (learner/knob.ts); absent: λ(t) = (1-t)/t on relative scores. */
  knobCalibration?: KnobCalibration;
}

/**
 * The quality knob t, calibrated: λ(t) in utility q − λ·cost/referenceCost is the largest trade-off
 * that kept t of the best estimated quality (each query to its best model) on recent traffic.
 */
export interface KnobCalibration {
  /** λ at t = 0, 0.01, ..., 1 (non-increasing; 0 at t = 1). */
  lambdas: number[];
  /**
   * Dollars that one unit of λ weighs against the whole quality scale: the mean, over the recent
   * queries, of the dearest model's cost. Absent in calibrations before it (they divided each
   * query's prices by that query's dearest).
   */
  referenceCost?: number;
  /** Estimated quality of each query sent to its best model (the knob's 100%). */
  bestQuality: number;
  bestSingle: string;
  bestSingleQuality: number;
  queries: number;
}

/**
 * λ in (λ·prior + Σ w·q) / (λ + Σ w): the prior's weight in pseudo-neighbours, chosen by
 * leave-one-out on stored traffic; with the errors that justified it.
 */
export interface KnnCalibration {
  priorStrength: number;
  /** Neighbours the kNN stage reads (k), fitted with λ; absent in versions before it was fitted. */
  neighbours?: number;
  samples: number;
  /** Mean squared error of the shrunk estimate at the chosen λ, and of the prior alone. */
  mse: number;
  msePriorOnly: number;
}
