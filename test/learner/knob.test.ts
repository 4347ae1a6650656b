import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { calibrateKnob, KNOB_STEPS } from '../../learner/knob.ts';
import { lambdaAt } from '../../router/combine.ts';
import { costLines } from '../../learner/job.ts';
import type { TrainingRow } from '../../core/store.ts';

/*
 * 100 queries, two models: "big" costs 10, "small" costs 1. small is as good as big on 60 queries
 * (0.8 each) and useless on 40 (0.1 against 0.9). Routing each query to its best model reaches
 * 0.84; sending the 60 easy ones to small keeps all of it at a fraction of the cost.
 */
const predictions = Array.from({ length: 100 }, (_, i) => ({
  key: `q${i}`,
  quality: i < 60 ? { big: 0.8, small: 0.8 } : { big: 0.9, small: 0.1 },
}));
const costs = { big: 10, small: 1 };

/** Estimated quality of the calibrated policy at knob t. */
function qualityAt(t: number, cal = calibrateKnob(predictions, () => costs)!): number {
  const lambda = lambdaAt(cal, t);
  // Prices against the reference cost (the dearest model's mean cost, 10).
  const price = { big: 1, small: 0.1 };
  return predictions.reduce((s, p) => {
    const pick = p.quality.big - lambda * price.big > p.quality.small - lambda * price.small ? 'big' : 'small';
    return s + p.quality[pick];
  }, 0) / predictions.length;
}

describe('knob calibration', () => {
  test('t is the share of the best reachable quality kept, at the least cost', () => {
    const cal = calibrateKnob(predictions, () => costs)!;
    assert.equal(cal.lambdas.length, KNOB_STEPS);
    assert.ok(Math.abs(cal.bestQuality - 0.84) < 1e-9);
    assert.equal(cal.bestSingle, 'big');
    for (const t of [0.5, 0.7, 0.9, 0.95, 0.99]) assert.ok(qualityAt(t) >= t * 0.84 - 1e-9, `t=${t}: ${qualityAt(t)}`);
    // 0.9 of the best is kept by sending only the easy queries to small: no need for all of big.
    assert.ok(Math.abs(qualityAt(0.9) - 0.84) < 1e-9);
    // Down at t = 0.5 every query may go to small (mean 0.52 >= 0.42).
    assert.ok(Math.abs(qualityAt(0.5) - 0.52) < 1e-9);
  });

  test('t = 1 is always the best estimated quality (λ = 0), and λ never rises with t', () => {
    const cal = calibrateKnob(predictions, () => costs)!;
    assert.equal(cal.lambdas[KNOB_STEPS - 1], 0);
    for (let i = 1; i < cal.lambdas.length; i++) assert.ok(cal.lambdas[i]! <= cal.lambdas[i - 1]!);
  });

  test('equal observed costs leave nothing to trade: the knob does not push towards a price never seen', () => {
    const cal = calibrateKnob(predictions, () => ({ big: 1, small: 1 }))!;
    assert.ok(cal.lambdas.every((l) => l === 0), JSON.stringify(cal.lambdas.slice(0, 5)));
  });

  test('prices are per query: the dear model is bought first where the prompt is short', () => {
    // 100 queries alike in quality (big 0.9, small 0.6); half are short (big costs 1), half long
    // (big costs 9). Every model's cost grows with the prompt; small costs a tenth of big.
    const qs = Array.from({ length: 100 }, (_, i) => ({ key: `q${i}`, text: i % 2 ? 'short' : 'long', quality: { big: 0.9, small: 0.6 } }));
    const price = (p: { text?: string }) => (p.text === 'short' ? { big: 1, small: 0.1 } : { big: 9, small: 0.9 });
    const cal = calibrateKnob(qs, price)!;
    assert.ok(Math.abs(cal.referenceCost! - 5) < 1e-9, `reference cost ${cal.referenceCost}`);
    // At t = 0.8 (0.72 of 0.9 kept) half of the queries must go to big: the short ones, for 50
    // dollars instead of 450.
    const lambda = lambdaAt(cal, 0.8);
    const picks = qs.map((p) => {
      const c = price(p);
      return 0.9 - (lambda * c.big) / cal.referenceCost! > 0.6 - (lambda * c.small) / cal.referenceCost! ? 'big' : 'small';
    });
    assert.ok(qs.every((p, i) => picks[i] === (p.text === 'short' ? 'big' : 'small')), picks.join(','));
  });

  test('the target is t of the best quality the evidence allows; what λ keeps is counted without the bonus', () => {
    // small is known well (0.7); big's estimate is 0.72 but rests on little, so with the bonus it
    // may be 0.9. Counted with the bonus on both sides, all-small keeps 0.7/0.9 = 78% and t = 0.75
    // would be all small; aiming at 0.75·0.9 = 0.675 of what big may be, and counting the 0.7
    // small really gives, it still is. At t = 0.8 (0.72) it is not: big must answer.
    const qs = Array.from({ length: 50 }, (_, i) => ({ key: `q${i}`, quality: { big: 0.9, small: 0.72 }, estimate: { big: 0.72, small: 0.7 } }));
    const cal = calibrateKnob(qs, () => costs)!;
    assert.ok(Math.abs(cal.bestQuality - 0.9) < 1e-9);
    const pickAt = (t: number) => (0.9 - lambdaAt(cal, t) * 1 > 0.72 - lambdaAt(cal, t) * 0.1 ? 'big' : 'small');
    assert.equal(pickAt(0.75), 'small');
    assert.equal(pickAt(0.8), 'big');
    // Without the bonus in the achieved quality, 0.72 of 0.9 would count as 80%: t = 0.8 all small.
    const plain = calibrateKnob(qs.map(({ key, quality }) => ({ key, quality })), () => costs)!;
    assert.ok(0.9 - lambdaAt(plain, 0.8) * 1 <= 0.72 - lambdaAt(plain, 0.8) * 0.1);
  });

  test('too few queries or a single model give no calibration', () => {
    assert.equal(calibrateKnob(predictions.slice(0, 10), () => costs), null);
    assert.equal(calibrateKnob(predictions, () => ({ big: 10 })), null);
  });
});

describe('what each model would cost on a query', () => {
  const row = (model: string, text: string, costUsd: number, success = true): TrainingRow => ({
    id: `${model}-${text.length}-${costUsd}`, ts: 0, queryText: text, language: 'en', domain: 'general', complexity: 'simple', model,
    success, latencyMs: 1, costUsd, rating: null, implicitNegative: false,
  });
  // dear: $0.001 + $0.00001 per token; cheap: $0.0002 whatever the size.
  const sizes = [40, 400, 4000];
  const rows = [
    ...sizes.map((n) => row('dear', 'x'.repeat(n), 0.001 + 0.00001 * (n / 4))),
    ...sizes.map((n) => row('cheap', 'y'.repeat(n), 0.0002)),
    row('dear', 'z'.repeat(40), 5, false),
  ];
  test('a line through each model\'s answered requests, by the prompt\'s size; failures do not count', () => {
    const cost = costLines(rows);
    const short = cost('a'.repeat(80)), long = cost('a'.repeat(8000));
    assert.ok(Math.abs(short.dear! - (0.001 + 0.0002)) < 1e-9, JSON.stringify(short));
    assert.ok(Math.abs(long.dear! - (0.001 + 0.02)) < 1e-9, JSON.stringify(long));
    assert.ok(Math.abs(short.cheap! - 0.0002) < 1e-12 && Math.abs(long.cheap! - 0.0002) < 1e-12);
  });
  test('one size only: the mean cost', () => {
    const cost = costLines([row('m', 'abcd', 0.002), row('m', 'efgh', 0.004)]);
    assert.ok(Math.abs(cost('a'.repeat(1000)).m! - 0.003) < 1e-12);
  });
});
