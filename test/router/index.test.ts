// The router end to end: precedence, stage failures skipped, timings, concurrency of kNN and
// judge (real judge over a loopback Ollama stand-in), learned priors per domain, reload and status.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { defaultKeywordRules } from '../../server/config.ts';
import { ApiError } from '../../server/errors.ts';
import { ANY, mulberry32 } from '../../router/bandit.ts';
import { createRouter, type RouterDeps } from '../../router/index.ts';
import { JudgeStage } from '../../router/judge.ts';
import { BadRegexError } from '../../router/keywords.ts';
import type { CandidateModel, LearnedState, QueryFeatures, RouteRequest, RoutingOutcome, RoutingStage, StageResult } from '../../router/types.ts';
import { startJudgeStandIn, type JudgeStandIn } from '../standins/ollama-judge.ts';
import { candidate, learnedState } from './fixtures.ts';

const config: RouterDeps['config'] = {
  explorationRate: 0,
  optimism: 0,
  minConfidence: 0.35,
  judgeModel: 'llama3',
  judgeTimeoutMs: 1500,
  judgeEnabled: true,
  embedder: 'builtin',
  allowModelDownload: false,
  keywordRules: defaultKeywordRules,
};

const models: CandidateModel[] = [
  candidate('fast', { tags: ['chat'], weight: 3, costPer1kInput: 0.0001, costPer1kOutput: 0.0002 }),
  candidate('coder', { tags: ['code'] }),
  candidate('large', { tags: ['reasoning', 'writing'], costPer1kInput: 0.003, costPer1kOutput: 0.015 }),
];
const req = (text: string, over: Partial<RouteRequest> = {}): RouteRequest => ({ requestId: 'r1', text, depth: 1, ...over });

/** A scripted stage that records its calls. */
class ScriptedStage implements RoutingStage {
  calls = 0;
  constructor(readonly name: string, private readonly behave: (candidates: CandidateModel[], signal?: AbortSignal) => Promise<StageResult | null>) {}
  score(_t: string, _f: QueryFeatures, candidates: CandidateModel[], signal?: AbortSignal): Promise<StageResult | null> {
    this.calls++;
    return this.behave(candidates, signal);
  }
}
const confidentKnn = (model: string, confidence = 0.9) =>
  new ScriptedStage('knn', async (cands) => ({ perModel: Object.fromEntries(cands.map((c) => [c.id, c.id === model ? 0.95 : 0.3])), confidence, evidence: `neighbours favour ${model}` }));

const standIns: JudgeStandIn[] = [];
after(async () => {
  await Promise.all(standIns.map((s) => s.close()));
});

describe('precedence', () => {
  test('an explicit model is returned alone, even when unhealthy, without running any stage', async () => {
    const knn = confidentKnn('coder');
    const router = createRouter({ config, knnStage: knn });
    const d = await router.route(req('Fix this python bug', { explicitModel: 'large', routingRules: [{ pattern: 'bug', model: 'coder' }] }), models.map((m) => ({ ...m, healthy: m.id !== 'large' })));
    assert.equal(d.method, 'explicit');
    assert.deepEqual(d.candidates.map((c) => c.model), ['large']);
    assert.equal(d.confidence, 1);
    assert.equal(knn.calls, 0);
    assert.equal(d.features.domain, 'code');
  });

  test('request rules beat the learned decision and keywords', async () => {
    const knn = confidentKnn('coder');
    const router = createRouter({ config, knnStage: knn });
    const d = await router.route(req('Fix this python bug', { routingRules: [{ pattern: 'python', model: 'large' }] }), models);
    assert.equal(d.method, 'request_rules');
    assert.equal(d.selected, 'large');
    assert.deepEqual(d.candidates.map((c) => c.model), ['large', 'fast', 'coder']);
    assert.match(d.reasoning, /request rule "python" matched: large/);
    assert.equal(knn.calls, 0);
  });

  test('a request rule naming an unhealthy or unknown model is passed over', async () => {
    const router = createRouter({ config, rng: mulberry32(1) });
    const cands = models.map((m) => ({ ...m, healthy: m.id !== 'large' }));
    const d = await router.route(req('hello', { routingRules: [{ pattern: 'hello', model: 'large' }, { pattern: 'hello', model: 'nope' }] }), cands);
    assert.notEqual(d.method, 'request_rules');
    assert.notEqual(d.selected, 'large');
  });

  test('a bad request pattern is a client error naming the pattern', async () => {
    const router = createRouter({ config });
    await assert.rejects(router.route(req('aaaa', { routingRules: [{ pattern: '(a+)\\1$', model: 'fast' }] }), models), (e: unknown) => {
      assert.ok(e instanceof BadRegexError);
      assert.match(e.message, /\(a\+\)\\\\1\$/);
      return true;
    });
  });

  test('a confident learned decision beats keyword rules', async () => {
    const router = createRouter({ config, knnStage: confidentKnn('large') });
    const d = await router.route(req('Fix this python bug'), models);
    assert.equal(d.method, 'knn');
    assert.equal(d.selected, 'large');
    assert.match(d.reasoning, /^kNN: neighbours favour large/);
  });

  test('a learned decision below minConfidence falls back to keywords, then to weights', async () => {
    const router = createRouter({ config, knnStage: confidentKnn('large', 0.2), rng: mulberry32(3) });
    const kw = await router.route(req('Fix this python bug'), models);
    assert.equal(kw.method, 'keywords');
    assert.equal(kw.selected, 'coder');
    assert.match(kw.reasoning, /learned confidence 0\.20 below 0\.35/);
    const w = await router.route(req('hello there'), models);
    assert.equal(w.method, 'weights');
    assert.deepEqual(new Set(w.candidates.map((c) => c.model)), new Set(['fast', 'coder', 'large']));
  });

  test('weights are deterministic under a seeded rng', async () => {
    const pick = async (seed: number) => {
      const router = createRouter({ config, rng: mulberry32(seed) });
      const out: string[] = [];
      for (let i = 0; i < 20; i++) out.push((await router.route(req('hello there'), models)).selected);
      return out;
    };
    const a = await pick(11);
    assert.deepEqual(a, await pick(11));
    assert.ok(a.filter((m) => m === 'fast').length > 8, 'weight 3 of 5 dominates');
  });

  test('unhealthy and zero-weight models are never chosen nor offered as fallbacks', async () => {
    const cands = [...models.map((m) => ({ ...m, healthy: m.id !== 'large' })), candidate('off', { weight: 0 })];
    const router = createRouter({ config, knnStage: confidentKnn('large'), rng: mulberry32(5) });
    for (const text of ['Prove the theorem', 'Fix this python bug', 'hello']) {
      const d = await router.route(req(text), cands);
      assert.ok(!d.candidates.some((c) => c.model === 'large' || c.model === 'off'), text);
    }
  });

  test('no healthy candidate is a 503', async () => {
    const router = createRouter({ config });
    await assert.rejects(router.route(req('hi'), models.map((m) => ({ ...m, healthy: false }))), (e: unknown) => e instanceof ApiError && e.status === 503 && e.code === 'no_healthy_model');
  });
});

describe('stage failures and timings', () => {
  test('a stage that throws is skipped and named in the reasoning', async () => {
    const logs: string[] = [];
    const knn = new ScriptedStage('knn', async () => { throw new Error('index corrupt'); });
    const router = createRouter({ config, knnStage: knn, log: (level, msg, f) => logs.push(`${level} ${msg} ${JSON.stringify(f)}`) });
    const d = await router.route(req('Fix this python bug'), models);
    assert.equal(d.method, 'keywords');
    assert.match(d.reasoning, /knn skipped \(index corrupt\)/);
    assert.ok(logs.some((l) => l.startsWith('warn routing stage failed') && l.includes('knn')));
  });

  test('a kNN stage that answers in place is used as score() would be, failures included', async () => {
    const inPlace = (answer: () => StageResult | null | undefined) => Object.assign(confidentKnn('coder'), { scoreNow: answer });
    const viaScore = await createRouter({ config, knnStage: confidentKnn('coder') }).route(req('hello'), models);
    const knn = inPlace(() => ({ perModel: { fast: 0.3, coder: 0.95, large: 0.3 }, confidence: 0.9, evidence: 'neighbours favour coder' }));
    const now = await createRouter({ config, knnStage: knn }).route(req('hello'), models);
    assert.equal(knn.calls, 0, 'score() was not needed');
    assert.deepEqual({ ...now, timings: Object.keys(now.timings) }, { ...viaScore, timings: Object.keys(viaScore.timings) });

    const notNow = inPlace(() => undefined);
    assert.equal((await createRouter({ config, knnStage: notNow }).route(req('hello'), models)).selected, 'coder');
    assert.equal(notNow.calls, 1, 'undefined falls back to score()');

    const broken = inPlace(() => { throw new Error('index corrupt'); });
    const d = await createRouter({ config, knnStage: broken }).route(req('Fix this python bug'), models);
    assert.match(d.reasoning, /knn skipped \(index corrupt\)/);
    assert.equal(typeof d.timings.knn, 'number');
  });

  test('a hanging stage is aborted at its budget and skipped', async () => {
    let aborted = false;
    const knn = new ScriptedStage('knn', (_c, signal) => new Promise(() => { signal?.addEventListener('abort', () => { aborted = true; }); }));
    const router = createRouter({ config, knnStage: knn, knnTimeoutMs: 50 });
    const start = performance.now();
    const d = await router.route(req('hello'), models);
    assert.ok(performance.now() - start < 500);
    assert.ok(aborted);
    assert.match(d.reasoning, /knn skipped \(timed out after 50 ms\)/);
  });

  test('a stage returning out-of-contract scores is clamped to [0,1] and unknown models dropped', async () => {
    const knn = new ScriptedStage('knn', async () => ({ perModel: { fast: 7, coder: Number.NaN, ghost: 1 }, confidence: 3, evidence: 'odd' }));
    const d = await createRouter({ config, knnStage: knn }).route(req('hello'), models);
    assert.equal(d.method, 'knn');
    assert.equal(d.selected, 'fast');
    assert.equal(d.candidates.find((c) => c.model === 'fast')?.parts?.knn, 1);
    assert.ok(!d.candidates.some((c) => c.model === 'ghost'));
    assert.equal(d.candidates.find((c) => c.model === 'coder')?.parts?.knn, undefined);
  });

  test('timings cover every part; kNN and judge run concurrently', async () => {
    const s = await startJudgeStandIn(() => ({ kind: 'content', content: JSON.stringify({ selectedModel: 'coder', confidence: 80, reasoning: 'a code task' }), delayMs: 150 }));
    standIns.push(s);
    const knn = new ScriptedStage('knn', async (cands) => {
      await delay(150);
      return { perModel: Object.fromEntries(cands.map((c) => [c.id, c.id === 'coder' ? 0.9 : 0.4])), confidence: 0.7, evidence: '9 similar queries favour coder' };
    });
    const judge = new JudgeStage({ host: s.url });
    await judge.judge('warm up the HTTP client', (await createRouter({ config }).route(req('x'), models)).features, models);
    const router = createRouter({ config, knnStage: knn, judge, knnTimeoutMs: 1000 });
    const start = performance.now();
    const d = await router.route(req('Fix this python bug'), models);
    const elapsed = performance.now() - start;
    assert.ok(elapsed < d.timings.knn! + d.timings.judge! - 60, `stages ran one after the other (${elapsed} ms)`);
    for (const part of ['features', 'rules', 'knn', 'judge', 'bandit', 'combine']) {
      assert.equal(typeof d.timings[part], 'number', part);
      assert.ok(d.timings[part]! >= 0);
    }
    assert.ok(d.timings.knn! >= 140 && d.timings.judge! >= 140);
    assert.equal(d.method, 'learned');
    assert.equal(d.selected, 'coder');
    assert.deepEqual(d.judge, { selectedModel: 'coder', confidence: 80, reasoning: 'a code task' });
    assert.match(d.reasoning, /kNN: 9 similar queries favour coder; judge: chose coder \(80%\): a code task/);
  });

  test('a judge past its budget gives no answer; routing goes on without it', async () => {
    const s = await startJudgeStandIn(() => ({ kind: 'stall' }));
    standIns.push(s);
    const router = createRouter({ config, judge: new JudgeStage({ host: s.url, timeoutMs: 80 }), rng: mulberry32(2) });
    const start = performance.now();
    const d = await router.route(req('Fix this python bug'), models);
    assert.ok(performance.now() - start < 600);
    assert.equal(d.judge, null);
    assert.equal(d.method, 'keywords');
    assert.match(d.reasoning, /judge gave no answer \(timeout: no answer within 80 ms\)/);
  });

  test('a disabled judge is not consulted', async () => {
    const s = await startJudgeStandIn(() => ({ kind: 'content', content: '{}' }));
    standIns.push(s);
    const router = createRouter({ config: { ...config, judgeEnabled: false }, judge: new JudgeStage({ host: s.url }) });
    const d = await router.route(req('hello'), models);
    assert.equal(s.requests.length, 0);
    assert.equal(d.judge, undefined);
    assert.equal(d.timings.judge, undefined);
  });
});

describe('learned priors', () => {
  const cell = (model: string, domain: string, language: string, alpha: number, beta: number) => ({ model, domain, language, alpha, beta });
  // "coder" is much better than "fast" on code; "fast" is better overall.
  const state: LearnedState = learnedState({
    version: 7,
    priors: [
      cell('coder', 'code', ANY, 180, 20), cell('fast', 'code', ANY, 60, 140),
      cell('coder', ANY, ANY, 500, 500), cell('fast', ANY, ANY, 900, 100),
    ],
  });
  const pair = models.slice(0, 2);

  test('route picks the model the priors favour in that domain, and not elsewhere', async () => {
    const router = createRouter({ config: { ...config, minConfidence: 0.3 }, loadLearned: async () => state });
    const before = await router.route(req('Fix this python bug in my function'), pair);
    assert.equal(before.method, 'keywords', 'no learned state yet');
    await router.reload();
    const code = await router.route(req('Fix this python bug in my function'), pair);
    assert.equal(code.features.domain, 'code');
    assert.equal(code.method, 'learned');
    assert.equal(code.selected, 'coder');
    assert.match(code.reasoning, /^priors: posterior means for code\/en: .*coder 0\.90 \(n=198, domain\)/);
    const chat = await router.route(req('Tell me a joke please'), pair);
    assert.equal(chat.method, 'learned');
    assert.equal(chat.selected, 'fast');
  });

  test('reload swaps state; a failed reload keeps the previous version; status reports it', async () => {
    let next: () => Promise<LearnedState | null> = async () => state;
    const router = createRouter({
      config,
      loadLearned: () => next(),
      embedder: { name: 'test-embedder', dim: 8, embed: async (texts) => texts.map(() => new Float32Array(8)) },
      knnStage: Object.assign(confidentKnn('fast'), { indexSize: 42 }),
      judge: new JudgeStage({ host: 'http://127.0.0.1:9' }),
    });
    assert.equal(router.status().learned, null);
    await router.reload();
    assert.equal(router.learned()?.version, 7);
    next = async () => { throw new Error('disk on fire'); };
    await assert.rejects(router.reload(), /disk on fire/);
    assert.equal(router.learned()?.version, 7);
    next = async () => null;
    await router.reload();
    assert.equal(router.learned()?.version, 7, 'no new state keeps the current one');
    const st = router.status() as Record<string, any>;
    assert.equal(st.learned.version, 7);
    assert.equal(st.lastReloadError, null);
    assert.deepEqual(st.embedder, { name: 'test-embedder', dim: 8 });
    assert.deepEqual(st.knn, { indexSize: 42 });
    assert.equal(st.judge.enabled, true);
    assert.equal(st.judge.available, null);
  });

  test('observe forwards outcomes to the online hook and swallows its failures', async () => {
    const got: RoutingOutcome[] = [];
    const outcome: RoutingOutcome = { requestId: 'r', text: 't', features: (await createRouter({ config }).route(req('t'), models)).features, model: 'fast', success: true, latencyMs: 10 };
    createRouter({ config, onObserve: (o) => { got.push(o); } }).observe(outcome);
    assert.deepEqual(got, [outcome]);
    const logs: string[] = [];
    const failing = createRouter({ config, onObserve: async () => { throw new Error('nope'); }, log: (_l, msg) => logs.push(msg) });
    failing.observe(outcome);
    createRouter({ config, onObserve: () => { throw new Error('sync nope'); }, log: (_l, msg) => logs.push(msg) }).observe(outcome);
    await delay(1);
    assert.deepEqual(logs, ['routing observe hook failed', 'routing observe hook failed']);
  });
});
