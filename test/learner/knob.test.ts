import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { calibrateKnob, KNOB_STEPS } from '../../learner/knob.ts';
import { lambdaAt } from '../../router/combine.ts';

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
function qualityAt(t: number, cal = calibrateKnob(predictions, costs)!): number {
  const lambda = lambdaAt(cal, t);
  const price = { big: 1, small: 0.1 };
  return predictions.reduce((s, p) => {
    const pick = p.quality.big - lambda * price.big > p.quality.small - lambda * price.small ? 'big' : 'small';
    return s + p.quality[pick];
  }, 0) / predictions.length;
}

describe('knob calibration', () => {
  test('t is the share of the best reachable quality kept, at the least cost', () => {
    const cal = calibrateKnob(predictions, costs)!;
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
    const cal = calibrateKnob(predictions, costs)!;
    assert.equal(cal.lambdas[KNOB_STEPS - 1], 0);
    for (let i = 1; i < cal.lambdas.length; i++) assert.ok(cal.lambdas[i]! <= cal.lambdas[i - 1]!);
  });

  test('equal observed costs leave nothing to trade: the knob does not push towards a price never seen', () => {
    const cal = calibrateKnob(predictions, { big: 1, small: 1 })!;
    assert.ok(cal.lambdas.every((l) => l === 0), JSON.stringify(cal.lambdas.slice(0, 5)));
  });

  test('too few queries or a single model give no calibration', () => {
    assert.equal(calibrateKnob(predictions.slice(0, 10), costs), null);
    assert.equal(calibrateKnob(predictions, { big: 10 }), null);
  });
});
