// Fusion: quality knob (utility q/qmax - λ(t)·price/pmax, λ = (1-t)/t), fallbacks by utility, latency preference,
// stage blending, and the keyword / weight fallbacks.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { decideByKeywords, decideByWeights, estimateCost, estimateTokens, explore, fuseLearned, qualityKnob, weightedPick, type FusionInput } from '../../router/combine.ts';
import type { RoutingPreference, StageResult } from '../../router/types.ts';
import { candidate, learnedState } from './fixtures.ts';

const cheap = candidate('cheap', { costPer1kInput: 0.0001, costPer1kOutput: 0.0002, weight: 3 });
const mid = candidate('mid', { costPer1kInput: 0.001, costPer1kOutput: 0.002 });
const best = candidate('best', { costPer1kInput: 0.01, costPer1kOutput: 0.03 });
const models = [best, cheap, mid];
const knn: StageResult = { perModel: { cheap: 0.7, mid: 0.8, best: 0.9 }, confidence: 0.8, evidence: '14 similar past queries, best best (0.90)' };

const fuse = (over: Partial<FusionInput> = {}) =>
  fuseLearned({ candidates: models, stages: { knn }, learned: null, inputTokens: 100, ...over });

describe('quality knob', () => {
  // q = (0.05 * 0.5 + 0.8 * s) / 0.85: cheap 0.688, mid 0.782, best 0.876 (relative 0.785, 0.893, 1);
  // prices for 100 input + 300 output tokens relative to the dearest: cheap 0.007, mid 0.07, best 1.
  const table: Array<[string, { qualityThreshold?: number; prefer?: RoutingPreference }, string[]]> = [
    ['t=0 picks the cheapest', { qualityThreshold: 0 }, ['cheap', 'mid', 'best']],
    ['t=0.1 (λ=9) still picks the cheap model', { qualityThreshold: 0.1 }, ['cheap', 'mid', 'best']],
    ['t=0.7 (λ=0.43) prefers the mid model', { qualityThreshold: 0.7 }, ['mid', 'cheap', 'best']],
    ['t=0.8 (λ=0.25) picks the mid model', { qualityThreshold: 0.8 }, ['mid', 'cheap', 'best']],
    ['t=0.9 needs the best model', { qualityThreshold: 0.9 }, ['best', 'mid', 'cheap']],
    ['t=1 picks the best quality', { qualityThreshold: 1 }, ['best', 'mid', 'cheap']],
    ['prefer quality = t 1', { prefer: 'quality' }, ['best', 'mid', 'cheap']],
    ['prefer cost = t 0.8', { prefer: 'cost' }, ['mid', 'cheap', 'best']],
    ['balanced = t 0.95', { prefer: 'balanced' }, ['best', 'mid', 'cheap']],
    ['an explicit threshold beats the preference', { prefer: 'quality', qualityThreshold: 0 }, ['cheap', 'mid', 'best']],
  ];
  for (const [name, knob, order] of table) {
    test(`${name}; fallbacks by utility: ${order.join(' > ')}`, () => {
      const d = fuse(knob);
      assert.ok(d);
      assert.equal(d.selected, order[0]);
      assert.deepEqual(d.candidates.map((c) => c.model), order);
      assert.equal(d.method, 'knn');
    });
  }

  test('a calibrated knob weighs dollars: a short prompt goes to the dear model, a long one does not', () => {
    const state = learnedState({ knobCalibration: { lambdas: new Array(101).fill(0.3).map((v, i) => (i === 100 ? 0 : v)), referenceCost: 0.02, bestQuality: 0.88, bestSingle: 'best', bestSingleQuality: 0.88, queries: 100 } });
    const at = (inputTokens: number) => fuse({ learned: state, inputTokens, qualityThreshold: 0.9, stages: { knn: { ...knn, perModel: { cheap: 0.6, mid: 0.62, best: 0.9 } } } })!;
    // q: best 0.876, cheap 0.594. best costs $0.01 at 100 input tokens: a penalty of 0.3·0.01/0.02 =
    // 0.15, less than the 0.28 it gains...
    assert.equal(at(100).selected, 'best');
    // ...and $0.059 at 5,000 tokens, a penalty of 0.89: the cheap model answers.
    assert.equal(at(5000).selected, 'cheap');
  });

  test('qualityKnob clamps and maps preferences', () => {
    assert.equal(qualityKnob(undefined, 7), 1);
    assert.equal(qualityKnob(undefined, -1), 0);
    assert.equal(qualityKnob('latency'), 0.95);
    assert.equal(qualityKnob(), 0.95);
  });

  test('equal quality at t=1 goes to the cheaper model', () => {
    const d = fuse({ qualityThreshold: 1, stages: { knn: { perModel: { cheap: 0.9, mid: 0.9, best: 0.9 }, confidence: 0.7, evidence: '' } } });
    assert.deepEqual(d?.candidates.map((c) => c.model), ['cheap', 'mid', 'best']);
  });

  test('the explanation names the evidence and the rule used', () => {
    const d = fuse({ qualityThreshold: 0.8 });
    assert.match(d!.reasoning, /^kNN: 14 similar past queries/);
    assert.match(d!.reasoning, /best quality for the cost \(knob 0\.80\): mid \(q=0\.78, \$/);
    assert.match(d!.reasoning, /best was best \(q=0\.88/);
    assert.match(fuse({ qualityThreshold: 1 })!.reasoning, /best estimated quality: best \(q=0\.88\)/);
  });

  test('per-candidate parts carry stage scores, quality, cost and utility', () => {
    const d = fuse({ qualityThreshold: 1 });
    const parts = d!.candidates[0]!.parts!;
    assert.equal(parts.knn, 0.9);
    assert.ok(Math.abs(parts.quality! - 0.745 / 0.85) < 1e-9);
    assert.ok(Math.abs(parts.cost! - estimateCost(best, 100)) < 1e-12);
    assert.equal(parts.utility, 1);
    assert.equal(d!.candidates[0]!.score, parts.quality);
  });
});

describe('cost and latency estimates', () => {
  test('cost uses input tokens and learned mean output tokens (300 when unknown)', () => {
    assert.ok(Math.abs(estimateCost(best, 1000) - (0.01 + 0.3 * 0.03)) < 1e-12);
    assert.ok(Math.abs(estimateCost(best, 2000, 100) - (0.02 + 0.1 * 0.03)) < 1e-12);
  });

  test('token estimate counts CJK characters one by one', () => {
    assert.equal(estimateTokens('abcdefgh'), 2);
    assert.equal(estimateTokens('你好世界'), 4);
  });

  test('long learned answers make a model dearer', () => {
    const learned = learnedState({ avgOutputTokens: { cheap: 200_000 } });
    const d = fuse({ qualityThreshold: 0, learned });
    assert.equal(d?.selected, 'mid');
  });

  test('prefer latency trades quality against learned mean latency', () => {
    const learned = learnedState({ avgLatencyMs: { cheap: 3000, mid: 500, best: 2000 } });
    const d = fuse({ prefer: 'latency', qualityThreshold: 0.7, learned });
    assert.equal(d?.selected, 'mid');
    assert.deepEqual(d?.candidates.map((c) => c.model), ['mid', 'best', 'cheap']);
    assert.equal(d?.candidates[0]?.parts?.latencyMs, 500);
    assert.match(d!.reasoning, /best quality for the latency \(knob 0\.70\): mid \(q=0\.78, 500 ms\)/);
  });
});

describe('blending stages', () => {
  const flatKnn: StageResult = { perModel: { cheap: 0.8, mid: 0.8, best: 0.8 }, confidence: 0.6, evidence: 'all alike' };
  const judge: StageResult = { perModel: { best: 0.9, cheap: 0.05, mid: 0.05 }, confidence: 0.9, evidence: 'chose best (90%): needs reasoning' };

  test("the judge's vote moves quality; method is learned and confidence a noisy-or", () => {
    const d = fuse({ qualityThreshold: 0.9, stages: { knn: flatKnn, judge } });
    assert.equal(d?.selected, 'best');
    assert.equal(d?.method, 'learned');
    assert.ok(Math.abs(d!.confidence - (1 - 0.4 * 0.1)) < 1e-9);
    assert.match(d!.reasoning, /kNN: all alike; judge: chose best \(90%\): needs reasoning; /);
  });

  test('judge alone is method judge; bandit alone is learned; stage weights scale trust', () => {
    assert.equal(fuse({ stages: { judge } })?.method, 'judge');
    assert.equal(fuse({ stages: { bandit: { ...flatKnn, evidence: 'priors' } } })?.method, 'learned');
    const halfJudge = fuse({ qualityThreshold: 0.9, stages: { knn: flatKnn, judge }, stageWeights: { judge: 0.5 } });
    assert.ok(Math.abs(halfJudge!.confidence - (1 - 0.4 * 0.55)) < 1e-9);
  });

  test('no stage with an opinion on these candidates means no learned decision', () => {
    assert.equal(fuse({ stages: {} }), null);
    assert.equal(fuse({ stages: { knn: { perModel: { other: 1 }, confidence: 0.9, evidence: '' } } }), null);
    assert.equal(fuse({ stages: { knn: { ...knn, confidence: 0 } } }), null);
  });

  test('a model no stage knows sits at a neutral 0.5', () => {
    const d = fuse({ qualityThreshold: 1, stages: { knn: { perModel: { cheap: 0.2, mid: 0.3 }, confidence: 0.9, evidence: '' } } });
    assert.equal(d?.selected, 'best');
    assert.equal(d?.candidates[0]?.score, 0.5);
  });
});

describe('keyword and weight fallbacks', () => {
  const seq = (...xs: number[]) => () => xs.shift() ?? 0;

  test('weights: weighted random choice, then by descending weight', () => {
    assert.equal(decideByWeights(models, seq(0.1)).selected, 'best');
    // Order best(1) cheap(3) mid(1): 0.5 * 5 = 2.5 falls in cheap's share [1, 4).
    const d = decideByWeights(models, seq(0.5));
    assert.equal(d.selected, 'cheap');
    assert.deepEqual(d.candidates.map((c) => c.model), ['cheap', 'best', 'mid']);
    assert.equal(d.confidence, 0.6);
    assert.equal(d.method, 'weights');
    assert.equal(decideByWeights(models, seq(0.99)).selected, 'mid');
  });

  test('weightedPick follows the weights statistically', () => {
    let state = 1;
    const rng = () => ((state = (state * 48271) % 2147483647) / 2147483647);
    const counts = { a: 0, b: 0 };
    for (let i = 0; i < 4000; i++) counts[weightedPick([{ id: 'a' as const, weight: 3 }, { id: 'b' as const, weight: 1 }], rng).id]++;
    assert.ok(Math.abs(counts.a / 4000 - 0.75) < 0.03);
  });

  test('keywords: best-scoring matches first (ties by weighted choice), then other matches, then the rest by weight', () => {
    const kw: StageResult = { perModel: { mid: 0.7, best: 0.7, cheap: 0.4 }, confidence: 0.7, evidence: 'rule "x" -> mid, best' };
    const d = decideByKeywords(models, kw, seq(0.9));
    assert.equal(d?.method, 'keywords');
    assert.deepEqual(d?.candidates.map((c) => c.model), ['mid', 'best', 'cheap']);
    assert.equal(decideByKeywords(models, kw, seq(0.1))?.selected, 'best');
    assert.equal(d?.reasoning, 'keywords: rule "x" -> mid, best');
    const one: StageResult = { perModel: { mid: 0.7 }, confidence: 0.7, evidence: '' };
    assert.deepEqual(decideByKeywords(models, one, seq(0))?.candidates.map((c) => c.model), ['mid', 'cheap', 'best']);
    assert.equal(decideByKeywords(models, null, seq(0)), null);
  });
});

describe('kNN evidence shrunk toward the priors', () => {
  const bandit: StageResult = { perModel: { cheap: 0.4, mid: 0.5, best: 0.6 }, confidence: 0.5, evidence: 'posterior means' };
  const local = { cheap: { weight: 4, sum: 3.6 }, mid: { weight: 2, sum: 0.2 } };
  const knnLocal: StageResult = { perModel: { cheap: 0.8, mid: 0.3, best: 0.6 }, confidence: 0.3, evidence: 'neighbours', local };

  test('neighbours count as observations on top of the prior, with the learner-fitted λ', () => {
    const learned = learnedState({ knnCalibration: { priorStrength: 4, samples: 100, mse: 0.01, msePriorOnly: 0.02 } });
    const d = fuseLearned({ candidates: models, stages: { knn: knnLocal, bandit }, learned, inputTokens: 100, qualityThreshold: 1 });
    const parts = Object.fromEntries(d!.candidates.map((c) => [c.model, c.parts!]));
    assert.ok(Math.abs(parts.cheap!.knnPrior! - (4 * 0.4 + 3.6) / (4 + 4)) < 1e-12);
    assert.ok(Math.abs(parts.mid!.knnPrior! - (4 * 0.5 + 0.2) / (4 + 2)) < 1e-12);
    assert.equal(parts.best!.knnPrior, 0.6, 'no neighbours: the prior alone');
    assert.equal(d!.selected, 'cheap', 'strong local evidence lifts cheap above the prior favourite');
    assert.equal(d!.method, 'learned');
  });

  test('a huge λ (neighbours uninformative) leaves the priors in charge', () => {
    const learned = learnedState({ knnCalibration: { priorStrength: 1e6, samples: 100, mse: 0.02, msePriorOnly: 0.02 } });
    const d = fuseLearned({ candidates: models, stages: { knn: knnLocal, bandit }, learned, inputTokens: 100, qualityThreshold: 1 });
    assert.equal(d!.selected, 'best');
  });
});

describe('exploration with logged propensities', () => {
  const routable = ['a', 'b', 'c', 'd'].map((id) => ({ id, description: '', tags: [], weight: 1, costPer1kInput: 0, costPer1kOutput: 0, healthy: true }));
  const core = { method: 'learned' as const, selected: 'a', candidates: routable.map((c, i) => ({ model: c.id, score: 1 - i / 10 })), confidence: 0.9, reasoning: 'r' };

  test('ε-greedy: the pick has 1 - ε + ε/n, every other candidate ε/n, and the draws follow them', () => {
    const counts: Record<string, number> = {};
    let seed = 7;
    const rng = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
    let last: ReturnType<typeof explore> | null = null;
    for (let i = 0; i < 20000; i++) {
      const d = explore(core, routable, 0.2, rng);
      counts[d.selected] = (counts[d.selected] ?? 0) + 1;
      last = d;
    }
    const want: Record<string, number> = { a: 0.85, b: 0.05, c: 0.05, d: 0.05 };
    for (const [m, p] of Object.entries(want)) assert.ok(Math.abs(last!.propensities![m]! - p) < 1e-12, `${m}: ${last!.propensities![m]}`);
    for (const [m, p] of Object.entries(last!.propensities!)) assert.ok(Math.abs(counts[m]! / 20000 - p) < 0.01, `${m}: ${counts[m]}`);
  });

  test('an exploring draw says so and keeps the others as fallbacks; ε = 0 is the decision itself', () => {
    const d = explore(core, routable, 1, () => 0.6);
    assert.equal(d.policy, 'explore');
    assert.equal(d.selected, 'c');
    assert.deepEqual(d.candidates.map((c) => c.model), ['c', 'a', 'b', 'd']);
    const g = explore(core, routable, 0, () => 0);
    assert.equal(g.selected, 'a');
    assert.deepEqual(g.propensities, { a: 1, b: 0, c: 0, d: 0 });
  });

  test('weighted picks log their weight shares', () => {
    const weighted = routable.map((c, i) => ({ ...c, weight: i + 1 }));
    const d = decideByWeights(weighted, () => 0.5);
    assert.deepEqual(d.propensities, { a: 0.1, b: 0.2, c: 0.3, d: 0.4 });
  });
});
