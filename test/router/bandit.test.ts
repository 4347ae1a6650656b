// Beta priors: back-off order, sampler statistics under a seeded RNG, and the bandit stage.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  ANY, BanditStage, betaMean, betaVariance, buildPriorIndex, mulberry32, priorFor, sampleBeta, sampleGamma,
} from '../../router/bandit.ts';
import type { PriorCell } from '../../router/types.ts';
import { candidate, features, learnedState } from './fixtures.ts';

const cell = (model: string, domain: string, language: string, alpha: number, beta: number): PriorCell => ({ model, domain, language, alpha, beta });

describe('priorFor back-off', () => {
  const priors = [
    cell('m', 'code', 'en', 30, 2),
    cell('m', 'code', ANY, 20, 5),
    cell('m', ANY, 'zh', 4, 8),
    cell('m', ANY, ANY, 10, 10),
    cell('empty', 'code', 'en', 1, 1),
    cell('empty', ANY, ANY, 3, 2),
  ];
  const index = buildPriorIndex(priors);
  const table: Array<[string, string, string, [number, number, string]]> = [
    ['m', 'code', 'en', [30, 2, 'cell']],
    ['m', 'code', 'fr', [20, 5, 'domain']],
    ['m', 'math', 'zh', [4, 8, 'language']],
    ['m', 'math', 'fr', [10, 10, 'model']],
    ['unknown', 'code', 'en', [1, 1, 'uniform']],
    // A cell without evidence (a bare Beta(1,1)) backs off instead of hiding its model's belief.
    ['empty', 'code', 'en', [3, 2, 'model']],
  ];
  for (const [model, domain, language, [alpha, beta, level]] of table) {
    test(`${model} x ${domain} x ${language} -> ${level}`, () => {
      assert.deepEqual(priorFor(index, model, domain, language), { alpha, beta, level });
      assert.deepEqual(priorFor(priors, model, domain, language), { alpha, beta, level }, 'a plain array works too');
    });
  }

  test('mean and variance of Beta', () => {
    assert.equal(betaMean(3, 1), 0.75);
    assert.equal(betaVariance(1, 1), 1 / 12);
  });
});

describe('samplers (seeded)', () => {
  test('mulberry32 is deterministic per seed and uniform on [0,1)', () => {
    const a = mulberry32(42), b = mulberry32(42), c = mulberry32(43);
    const xs = Array.from({ length: 5 }, () => a());
    assert.deepEqual(xs, Array.from({ length: 5 }, () => b()));
    assert.notDeepEqual(xs, Array.from({ length: 5 }, () => c()));
    const rng = mulberry32(7);
    let sum = 0;
    for (let i = 0; i < 20_000; i++) {
      const x = rng();
      assert.ok(x >= 0 && x < 1);
      sum += x;
    }
    assert.ok(Math.abs(sum / 20_000 - 0.5) < 0.01);
  });

  const stats = (xs: number[]) => {
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const variance = xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (xs.length - 1);
    return { mean, variance };
  };

  for (const shape of [0.3, 1, 2.5, 40]) {
    test(`Gamma(${shape}) has mean and variance ${shape}`, () => {
      const rng = mulberry32(1000 + shape * 10);
      const { mean, variance } = stats(Array.from({ length: 40_000 }, () => sampleGamma(shape, rng)));
      assert.ok(Math.abs(mean - shape) / shape < 0.03, `mean ${mean}`);
      assert.ok(Math.abs(variance - shape) / shape < 0.08, `variance ${variance}`);
    });
  }

  for (const [alpha, beta] of [[1, 1], [2, 5], [0.5, 0.5], [30, 3], [200, 120]] as const) {
    test(`Beta(${alpha}, ${beta}) samples match its mean and variance`, () => {
      const rng = mulberry32(alpha * 31 + beta);
      const xs = Array.from({ length: 40_000 }, () => sampleBeta(alpha, beta, rng));
      assert.ok(xs.every((x) => x >= 0 && x <= 1));
      const { mean, variance } = stats(xs);
      const sd = Math.sqrt(betaVariance(alpha, beta));
      // Mean within 5 standard errors; variance within 8%.
      assert.ok(Math.abs(mean - betaMean(alpha, beta)) < (5 * sd) / Math.sqrt(xs.length), `mean ${mean}`);
      assert.ok(Math.abs(variance - betaVariance(alpha, beta)) / betaVariance(alpha, beta) < 0.08, `variance ${variance}`);
    });
  }
});

describe('BanditStage', () => {
  const models = [candidate('a'), candidate('b'), candidate('c')];
  const state = learnedState({
    priors: [cell('a', 'code', 'en', 40, 10), cell('b', 'code', 'en', 10, 40), cell('a', ANY, ANY, 5, 5), cell('b', ANY, ANY, 5, 5)],
  });

  test('without learned state it has no opinion', async () => {
    const stage = new BanditStage({ learned: () => null, explorationRate: 0, rng: mulberry32(1) });
    assert.equal(await stage.score('q', features({ domain: 'code' }), models), null);
  });

  test('scores are posterior means; unknown models get 0.5; confidence grows with evidence', async () => {
    const stage = new BanditStage({ learned: () => state, explorationRate: 0, rng: mulberry32(1) });
    const r = await stage.score('q', features({ domain: 'code', language: 'en' }), models);
    assert.ok(r);
    assert.equal(r.perModel.a, 0.8);
    assert.equal(r.perModel.b, 0.2);
    assert.equal(r.perModel.c, 0.5);
    const elsewhere = await stage.score('q', features({ domain: 'math', language: 'en' }), models);
    assert.ok(elsewhere);
    assert.equal(elsewhere.perModel.a, 0.5);
    assert.ok(r.confidence > elsewhere.confidence, 'exact cells with more evidence are trusted more');
    assert.match(r.evidence, /posterior means for code\/en: a 0\.80 \(n=48, cell\)/);
  });

  test('explores with Thompson samples at the exploration rate, deterministically per seed', async () => {
    const run = async (seed: number) => {
      const stage = new BanditStage({ learned: () => state, explorationRate: 0.5, rng: mulberry32(seed) });
      const out: string[] = [];
      for (let i = 0; i < 200; i++) {
        const r = await stage.score('q', features({ domain: 'code' }), models);
        out.push(r!.evidence.startsWith('Thompson') ? `T${r!.perModel.a}` : 'M');
      }
      return out;
    };
    const first = await run(9);
    assert.deepEqual(first, await run(9));
    const explored = first.filter((x) => x !== 'M').length;
    assert.ok(explored > 70 && explored < 130, `explored ${explored} of 200`);
    assert.ok(new Set(first.filter((x) => x !== 'M')).size > 50, 'samples vary');
  });

  test('posterior means follow the candidates asked about and a newly loaded state', async () => {
    let current = state;
    const stage = new BanditStage({ learned: () => current, explorationRate: 0, rng: mulberry32(1) });
    const code = features({ domain: 'code', language: 'en' });
    assert.equal((await stage.score('q', code, models))!.perModel.a, 0.8);
    assert.deepEqual(Object.keys((await stage.score('q', code, [models[1]!, models[0]!]))!.perModel), ['b', 'a']);
    current = learnedState({ priors: [cell('a', 'code', 'en', 10, 40)] });
    assert.equal((await stage.score('q', code, models))!.perModel.a, 0.2);
  });
});
