// The router: features, then explicit model > request rules > learned decision (kNN + judge +
// bandit, when confident enough) > keyword rules > weights. Stage failures are skipped, never thrown.
import { performance } from 'node:perf_hooks';
import { ApiError } from '../core/errors.ts';
import { StopSignal, type ClientSignal } from '../core/stop-signal.ts';
import type { AppConfig, KeywordRule } from '../core/config.ts';
import { BanditStage } from './bandit.ts';
import { decideByKeywords, decideByWeights, decideFixed, estimateTokens, explore, fuseLearned, type DecisionCore } from './combine.ts';
import type { Embedder } from '../core/embedder.ts';
import type { Log } from '../core/log.ts';
import { extractFeatures } from './features.ts';
import { type JudgeStage, type JudgeVerdict, verdictToStageResult } from './judge.ts';
import { KeywordStage, matchRequestRules } from './keywords.ts';
import type { CandidateModel, LearnedState, QueryFeatures, RouteRequest, Router, RoutingDecision, RoutingOutcome, RoutingStage, StageResult } from '../core/routing.ts';

export interface RouterDeps {
  config: AppConfig['routing'] & { keywordRules: KeywordRule[] };
  embedder?: Embedder;
  /**
   * The kNN stage; `indexSize` is reported by status() when the stage has it. A stage that can
   * answer without I/O offers `scoreNow` (undefined when it cannot this time), run in place.
   */
  knnStage?: RoutingStage & { readonly indexSize?: number; scoreNow?(text: string, candidates: readonly CandidateModel[]): StageResult | null | undefined };
  judge?: JudgeStage | null;
  loadLearned?: () => Promise<LearnedState | null>;
  /** Served outcomes, so online parts (the kNN index) can grow. */
  onObserve?: (outcome: RoutingOutcome) => void | Promise<void>;
  rng?: () => number;
  log?: Log;
  /** Wall clock for status timestamps. */
  now?: () => number;
  /** Budget for the kNN stage (embedding + search); default 250 ms. */
  knnTimeoutMs?: number;
  /** Relative trust per learned stage, on top of each stage's confidence. */
  stageWeights?: Record<string, number>;
}

export interface SwitchyardRouter extends Router {
  observe(outcome: RoutingOutcome): void;
  reload(): Promise<void>;
  status(): Record<string, unknown>;
  /** The learned state in force (null before the first successful reload). */
  learned(): LearnedState | null;
}

/** Extra time a judge gets past its own budget before the router stops waiting for it. */
const JUDGE_GRACE_MS = 100;

class StageTimeout extends Error {
  constructor(ms: number) {
    super(`timed out after ${ms} ms`);
  }
}

/** Keeps a stage's output inside its contract: finite scores in [0,1] for known candidates only. */
function sanitize(result: StageResult | null, candidates: readonly CandidateModel[]): StageResult | null {
  if (!result || typeof result !== 'object' || !result.perModel) return null;
  const perModel: Record<string, number> = {};
  for (const c of candidates) {
    const v = result.perModel[c.id];
    if (typeof v === 'number' && Number.isFinite(v)) perModel[c.id] = Math.min(1, Math.max(0, v));
  }
  const confidence = Number.isFinite(result.confidence) ? Math.min(1, Math.max(0, result.confidence)) : 0;
  const out: StageResult = { perModel, confidence, evidence: String(result.evidence ?? '') };
  if (result.support) {
    const support: Record<string, number> = {};
    for (const c of candidates) {
      const v = result.support[c.id];
      if (typeof v === 'number' && Number.isFinite(v) && v >= 0) support[c.id] = v;
    }
    out.support = support;
  }
  if (result.local) {
    const local: Record<string, { weight: number; sum: number }> = {};
    for (const c of candidates) {
      const l = result.local[c.id];
      if (l && Number.isFinite(l.weight) && Number.isFinite(l.sum) && l.weight >= 0) local[c.id] = { weight: l.weight, sum: Math.min(l.sum, l.weight) };
    }
    out.local = local;
  }
  return out;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;
const ms = (start: number) => round3(performance.now() - start);
const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e)).slice(0, 200);

/**
 * Build the router. Call `reload()` once after creation to load learned state; until then only
 * rules, keywords and weights (and the kNN/judge stages, if given) route.
 *
 * An explicit model is returned alone, whatever its health: the caller asked for it, and the
 * gateway decides what to do when it is down. Otherwise only healthy candidates with weight > 0
 * are considered; when there are none, route() throws a 503 ApiError (`no_healthy_model`).
 * Invalid request routing rules throw BadRegexError (a 400 ApiError).
 */
export function createRouter(deps: RouterDeps): SwitchyardRouter {
  const { config } = deps;
  const rng = deps.rng ?? Math.random;
  const now = deps.now ?? Date.now;
  const log: Log = deps.log ?? (() => undefined);
  const knnTimeoutMs = deps.knnTimeoutMs ?? 250;

  // The learned state in force; replaced by one reference swap so a route never sees a mix.
  let current: { state: LearnedState; loadedAt: number } | null = null;
  let lastReloadError: string | null = null;
  const learned = () => current?.state ?? null;

  const keywords = new KeywordStage(config.keywordRules, { ruleWeights: () => learned()?.keywordRuleWeights });
  // Exploration is the router's (ε-greedy with logged propensities), not the priors stage's.
  const bandit = new BanditStage({ learned, explorationRate: 0, rng });
  const judge = config.judgeEnabled ? deps.judge ?? null : null;

  async function runStage(
    name: string,
    timeoutMs: number,
    fn: (signal: ClientSignal) => Promise<StageResult | null>,
    timings: Record<string, number>,
    notes: string[],
  ): Promise<StageResult | null> {
    const start = performance.now();
    const stop = new StopSignal();
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const reason = new StageTimeout(timeoutMs);
          stop.abort(reason);
          reject(reason);
        }, timeoutMs);
      });
      return await Promise.race([fn(stop), timeout]);
    } catch (e) {
      notes.push(`${name} skipped (${errorText(e)})`);
      log('warn', 'routing stage failed', { stage: name, error: errorText(e) });
      return null;
    } finally {
      clearTimeout(timer);
      timings[name] = ms(start);
    }
  }

  async function route(req: RouteRequest, candidates: CandidateModel[]): Promise<RoutingDecision> {
    const timings: Record<string, number> = {};
    let start = performance.now();
    const features: QueryFeatures = extractFeatures(req.text, req.depth);
    timings.features = ms(start);
    // Object.assign rather than a spread (see explore() in combine.ts): the decision gains properties.
    const finish = (core: DecisionCore, judgeVerdict?: JudgeVerdict | null): RoutingDecision =>
      judgeVerdict === undefined ? Object.assign({}, core, { features, timings }) : Object.assign({}, core, { features, timings, judge: judgeVerdict });

    if (req.explicitModel) return finish(decideFixed('explicit', req.explicitModel, [], `explicit model ${req.explicitModel} requested`));

    const routable = candidates.filter((c) => c.healthy === true && c.weight > 0);
    if (routable.length === 0) throw new ApiError(503, 'No healthy model is available to route to', 'upstream_error', 'no_healthy_model');

    start = performance.now();
    if (req.routingRules?.length) {
      const routableIds = new Set(routable.map((c) => c.id));
      const hit = matchRequestRules(req.text, req.routingRules, (id) => routableIds.has(id));
      if (hit) {
        timings.rules = ms(start);
        return finish(decideFixed('request_rules', hit.model, routable, `request rule ${JSON.stringify(hit.pattern)} matched: ${hit.model}`));
      }
    }
    const notes: string[] = [];
    // Keyword rules only decide when the learned decision does not: they are scored in the
    // fallback below (their time still counts under "rules").
    timings.rules = ms(start);

    // kNN and judge run concurrently; the bandit is synchronous and cheap. A kNN stage that answers
    // in place (TF-IDF) needs no timer, stop signal or promise: nothing could interrupt it.
    let verdict: JudgeVerdict | null | undefined;
    const knnStage = deps.knnStage;
    let knnNow: StageResult | null | undefined;
    if (knnStage?.scoreNow) {
      start = performance.now();
      try {
        knnNow = knnStage.scoreNow(req.text, routable);
        if (knnNow) knnNow = sanitize(knnNow, routable);
      } catch (e) {
        notes.push(`knn skipped (${errorText(e)})`);
        log('warn', 'routing stage failed', { stage: 'knn', error: errorText(e) });
        knnNow = null;
      }
      if (knnNow !== undefined) timings.knn = ms(start);
    }
    const [knnResult, judgeResult] = knnNow !== undefined && !judge ? [knnNow, null] : await Promise.all([
      knnNow !== undefined
        ? knnNow
        : knnStage
          ? runStage('knn', knnTimeoutMs, async (signal) => sanitize(await knnStage.score(req.text, features, routable, signal), routable), timings, notes)
          : Promise.resolve(null),
      judge
        ? runStage('judge', judge.timeoutMs + JUDGE_GRACE_MS, async (signal) => {
            verdict = await judge.judge(req.text, features, routable, signal);
            return verdict ? verdictToStageResult(verdict, routable) : null;
          }, timings, notes)
        : Promise.resolve(null),
    ]);
    if (judge && verdict === null) notes.push(`judge gave no answer${judge.status().lastError ? ` (${judge.status().lastError})` : ''}`);
    if (judge && verdict === undefined) verdict = null;

    start = performance.now();
    let banditResult: StageResult | null = null;
    try {
      banditResult = sanitize(bandit.scoreSync(features, routable), routable);
    } catch (e) {
      notes.push(`bandit skipped (${errorText(e)})`);
    }
    timings.bandit = ms(start);

    start = performance.now();
    const state = learned();
    const suffix = () => (notes.length ? `; ${notes.join('; ')}` : '');
    const learnedDecision = fuseLearned({
      candidates: routable,
      stages: { knn: knnResult, judge: judgeResult, bandit: banditResult },
      learned: state,
      inputTokens: estimateTokens(req.text),
      prefer: req.prefer,
      qualityThreshold: req.qualityThreshold,
      stageWeights: deps.stageWeights,
      optimism: config.optimism,
    });
    if (learnedDecision && learnedDecision.confidence >= config.minConfidence) {
      const core = explore(learnedDecision, routable, config.explorationRate, rng);
      timings.combine = ms(start);
      return finish({ ...core, reasoning: core.reasoning + suffix() }, verdict);
    }
    const keywordsStart = performance.now();
    let keywordResult: StageResult | null = null;
    try {
      keywordResult = sanitize(keywords.scoreSync(req.text, routable), routable);
    } catch (e) {
      notes.unshift(`keywords skipped (${errorText(e)})`);
    }
    const keywordsMs = ms(keywordsStart);
    timings.rules = round3(timings.rules + keywordsMs);
    notes.unshift(learnedDecision
      ? `learned confidence ${learnedDecision.confidence.toFixed(2)} below ${config.minConfidence}`
      : 'no learned opinion');
    const byKeywords = decideByKeywords(routable, keywordResult, rng);
    // A weighted draw already explores; a keyword pick explores like a learned one.
    const fallback = byKeywords ? explore(byKeywords, routable, config.explorationRate, rng, byKeywords.propensities) : decideByWeights(routable, rng);
    timings.combine = Math.max(0, round3(ms(start) - keywordsMs));
    return finish({ ...fallback, reasoning: fallback.reasoning + suffix() }, verdict);
  }

  async function reload(): Promise<void> {
    if (!deps.loadLearned) return;
    try {
      const next = await deps.loadLearned();
      if (next) {
        current = { state: next, loadedAt: now() };
        judge?.clearCache();
        log('info', 'learned state loaded', { version: next.version, priors: next.priors.length });
      }
      lastReloadError = null;
    } catch (e) {
      lastReloadError = errorText(e);
      log('error', 'learned state reload failed; keeping the previous version', { error: lastReloadError });
      throw e;
    }
  }

  function observe(outcome: RoutingOutcome): void {
    if (!deps.onObserve) return;
    const fail = (e: unknown) => log('warn', 'routing observe hook failed', { error: errorText(e) });
    try {
      const r = deps.onObserve(outcome);
      if (r instanceof Promise) r.catch(fail);
    } catch (e) {
      fail(e);
    }
  }

  function status(): Record<string, unknown> {
    const state = learned();
    return {
      embedder: deps.embedder ? { name: deps.embedder.name, dim: deps.embedder.dim } : null,
      knn: deps.knnStage ? { indexSize: deps.knnStage.indexSize ?? null } : null,
      judge: judge ? { enabled: true, ...judge.status() } : { enabled: false },
      learned: state
        ? { version: state.version, createdAt: state.createdAt, loadedAt: current?.loadedAt ?? null, priors: state.priors.length, profiles: Object.keys(state.profiles).length }
        : null,
      lastReloadError,
      keywordRules: keywords.ruleCount,
      minConfidence: config.minConfidence,
      explorationRate: config.explorationRate,
    };
  }

  return { route, reload, observe, status, learned };
}
