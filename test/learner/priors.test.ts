import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { TrainingRow } from '../../server/store/types.ts';
import {
  ANY, accumulateEvidence, decayWeight, defaultPriorOptions, ipsWeights, priorChanges, priorMean, priorsFromEvidence, rowQuality,
} from '../../learner/priors.ts';

const DAY = 86_400_000;
const NOW = 1_700_000_000_000;

function row(over: Partial<TrainingRow>): TrainingRow {
  return {
    id: 'r', ts: NOW, queryText: 'q', language: 'en', domain: 'code', complexity: 'simple', model: 'm',
    success: true, latencyMs: 100, costUsd: 0, rating: null, implicitNegative: false, ...over,
  };
}

const cell = (cells: ReturnType<typeof priorsFromEvidence>, model: string, domain: string, language: string) =>
  cells.find((c) => c.model === model && c.domain === domain && c.language === language);

describe('row quality', () => {
  test('a rating maps linearly onto 0..1', () => {
    assert.equal(rowQuality(row({ rating: 1 })), 0);
    assert.equal(rowQuality(row({ rating: 5 })), 1);
    assert.equal(rowQuality(row({ rating: 3.4 })), 0.6);
  });

  test('an answered, unrated row carries no quality evidence; a failed one counts 0', () => {
    assert.equal(rowQuality(row({})), null);
    assert.equal(rowQuality(row({ success: false })), 0);
  });

  test('an implicit negative signal: an unrated answer counts as a rating of 2, a rated one loses a penalty, never below 0', () => {
    assert.equal(rowQuality(row({ implicitNegative: true })), 0.25);
    assert.ok(Math.abs(rowQuality(row({ rating: 4, implicitNegative: true }))! - (0.75 - defaultPriorOptions.implicitPenalty)) < 1e-12);
    assert.equal(rowQuality(row({ rating: 1, implicitNegative: true })), 0);
  });

  test('unrated successes add no evidence: a model answered a thousand times without a rating keeps no belief', () => {
    const rows = Array.from({ length: 1000 }, (_, i) => row({ id: `u${i}` }));
    assert.deepEqual(accumulateEvidence(null, rows, NOW).cells, []);
  });
});

describe('time decay', () => {
  test('evidence halves every half-life and future rows count fully', () => {
    assert.equal(decayWeight(0, 14), 1);
    assert.equal(decayWeight(14 * DAY, 14), 0.5);
    assert.equal(decayWeight(28 * DAY, 14), 0.25);
    assert.equal(decayWeight(-DAY, 14), 1);
  });

  test('an old row weighs less than a fresh one in the posterior', () => {
    const ev = accumulateEvidence(null, [row({ rating: 5, ts: NOW - 14 * DAY }), row({ rating: 1, ts: NOW })], NOW);
    const c = ev.cells.find((x) => x.domain === 'code' && x.language === 'en')!;
    assert.ok(Math.abs(c.good - 0.5) < 1e-12);
    assert.ok(Math.abs(c.bad - 1) < 1e-12);
  });
});

describe('incremental evidence', () => {
  test('merging a previous run (decayed by elapsed time) with new rows equals one run over all rows', () => {
    const first = [row({ id: 'a', rating: 5, ts: NOW - 20 * DAY }), row({ id: 'b', rating: 2, ts: NOW - 10 * DAY, model: 'n' })];
    const second = [row({ id: 'c', rating: 4, ts: NOW - 2 * DAY }), row({ id: 'd', success: false, ts: NOW - DAY, domain: 'math' })];
    const earlier = accumulateEvidence(null, first, NOW - 7 * DAY);
    const incremental = accumulateEvidence(earlier, second, NOW);
    const batch = accumulateEvidence(null, [...first, ...second], NOW);
    assert.equal(incremental.cells.length, batch.cells.length);
    for (const [i, c] of batch.cells.entries()) {
      const d = incremental.cells[i]!;
      assert.deepEqual([d.model, d.domain, d.language], [c.model, c.domain, c.language]);
      assert.ok(Math.abs(d.good - c.good) < 1e-9 && Math.abs(d.bad - c.bad) < 1e-9, `${c.model}/${c.domain}/${c.language}`);
    }
  });

  test('each row feeds its cell and the domain, language and overall marginals', () => {
    const ev = accumulateEvidence(null, [row({ rating: 5 })], NOW);
    const keys = ev.cells.map((c) => `${c.domain}/${c.language}`).sort();
    assert.deepEqual(keys, [`${ANY}/${ANY}`, `${ANY}/en`, `code/${ANY}`, 'code/en']);
  });
});

describe('priors', () => {
  test('alpha and beta are pseudo-counts from the parent mean plus the decayed evidence', () => {
    const rows = Array.from({ length: 10 }, (_, i) => row({ id: `r${i}`, rating: 5 }));
    const priors = priorsFromEvidence(accumulateEvidence(null, rows, NOW));
    const overall = cell(priors, 'm', ANY, ANY)!;
    // One model only: the pooled mean is (1 + 10) / (2 + 10); k = 2 pseudo-counts of it, plus 10 good.
    const pooled = 11 / 12;
    assert.ok(Math.abs(overall.alpha - (2 * pooled + 10)) < 1e-9);
    assert.ok(Math.abs(overall.beta - 2 * (1 - pooled)) < 1e-9);
  });

  test('a thin cell stays near its model level instead of jumping to its few observations', () => {
    const rows = [
      ...Array.from({ length: 40 }, (_, i) => row({ id: `w${i}`, domain: 'writing', rating: 2 })),
      row({ id: 'x', domain: 'math', rating: 5 }),
    ];
    const priors = priorsFromEvidence(accumulateEvidence(null, rows, NOW));
    const math = priorMean(cell(priors, 'm', 'math', 'en')!);
    assert.ok(math < 0.6, `one 5-star answer must not make math look great (mean ${math})`);
    assert.ok(math > 0.3);
  });

  test('the better model in a domain gets the higher posterior mean there', () => {
    const rows = [
      ...Array.from({ length: 20 }, (_, i) => row({ id: `a${i}`, model: 'a', rating: 5 })),
      ...Array.from({ length: 20 }, (_, i) => row({ id: `b${i}`, model: 'b', rating: 2 })),
    ];
    const priors = priorsFromEvidence(accumulateEvidence(null, rows, NOW));
    assert.ok(priorMean(cell(priors, 'a', 'code', 'en')!) > priorMean(cell(priors, 'b', 'code', 'en')!) + 0.4);
  });

  test('a strong shrinkage of domain cells does not shrink the models toward each other', () => {
    // 50 ratings each: a answers 80% right, b 60%. Cells that look alike (one domain) make the fitted
    // strength large; the model level must still tell a from b.
    const rows = [
      ...Array.from({ length: 50 }, (_, i) => row({ id: `a${i}`, model: 'a', rating: i % 5 === 0 ? 1 : 5 })),
      ...Array.from({ length: 50 }, (_, i) => row({ id: `b${i}`, model: 'b', rating: i % 5 < 2 ? 1 : 5 })),
    ];
    const priors = priorsFromEvidence(accumulateEvidence(null, rows, NOW), { ...defaultPriorOptions, priorStrength: 1024 });
    const a = priorMean(cell(priors, 'a', ANY, ANY)!), b = priorMean(cell(priors, 'b', ANY, ANY)!);
    assert.ok(a > 0.77 && b < 0.63, `a ${a}, b ${b}`);
    assert.ok(priorMean(cell(priors, 'a', 'code', 'en')!) - priorMean(cell(priors, 'b', 'code', 'en')!) > 0.15);
  });

  test('priorChanges lists the cells that moved most, new cells measured from 0.5', () => {
    const before = [{ model: 'a', domain: ANY, language: ANY, alpha: 5, beta: 5 }, { model: 'b', domain: ANY, language: ANY, alpha: 5, beta: 5 }];
    const after = [{ model: 'a', domain: ANY, language: ANY, alpha: 9, beta: 1 }, { model: 'b', domain: ANY, language: ANY, alpha: 6, beta: 4 }, { model: 'c', domain: ANY, language: ANY, alpha: 3, beta: 7 }];
    const changes = priorChanges(before, after, 2);
    assert.deepEqual(changes.map((c) => c.model), ['a', 'c']);
    assert.equal(changes[0]!.from, 0.5);
    assert.ok(Math.abs(changes[0]!.delta - 0.4) < 1e-12);
    assert.equal(changes[1]!.from, null);
  });
});

describe('correcting for the router\'s own choices', () => {
  test('rows chosen by exploration (small π) count more than greedy ones, self-normalised per model', () => {
    const rows = [
      row({ id: 'g1', model: 'a', rating: 1, propensity: 0.95 }),
      row({ id: 'g2', model: 'a', rating: 1, propensity: 0.95 }),
      row({ id: 'x1', model: 'a', rating: 5, propensity: 0.05 }),
      row({ id: 'u1', model: 'a' }),
      row({ id: 'b1', model: 'b', rating: 3 }),
    ];
    const w = ipsWeights(rows);
    assert.ok(Math.abs(w[0]! + w[1]! + w[2]! - 3) < 1e-9, 'model a keeps three observations in all');
    assert.ok(w[2]! > 2.5 && w[0]! < 0.25, JSON.stringify(w));
    assert.equal(w[3], 0, 'an unrated answer carries no weight');
    assert.equal(w[4], 1, 'a row without a logged propensity counts 1');
    // The explored 5 outweighs the two greedy 1s: model a's mean leans to what it does on the queries it was not picked for.
    const ev = accumulateEvidence(null, rows, NOW);
    const a = ev.cells.find((c) => c.model === 'a' && c.domain === ANY && c.language === ANY)!;
    assert.ok(a.good / (a.good + a.bad) > 0.8, JSON.stringify(a));
  });
});
