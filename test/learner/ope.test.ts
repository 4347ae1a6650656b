import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { QueryFeatures } from '../../router/types.ts';
import {
  estimatePolicy, normalQuantile, qualityDifference, seededRng,
  type LoggedContext, type LoggedDecision, type OutcomeModel, type TargetPolicy,
} from '../../learner/ope.ts';

// A known world: three kinds of query, three models, each model good at one kind.
const MODELS = ['alpha', 'beta', 'gamma'] as const;
const DOMAINS = ['math', 'code', 'writing'] as const;
const TRUE_QUALITY: Record<string, Record<string, number>> = {
  math: { alpha: 0.9, beta: 0.3, gamma: 0.5 },
  code: { alpha: 0.2, beta: 0.85, gamma: 0.4 },
  writing: { alpha: 0.5, beta: 0.35, gamma: 0.8 },
};
const COST: Record<string, number> = { alpha: 0.01, beta: 0.002, gamma: 0.005 };

const features = (domain: string): QueryFeatures => ({
  language: 'en', mixed: false, domain: domain as QueryFeatures['domain'], complexity: 'simple', lengthBucket: 's', chars: 20, hasCode: false, depth: 1,
});
const ctx = (domain: string): LoggedContext => ({ text: `a ${domain} question`, features: features(domain), candidates: [...MODELS] });

/** The logging policy: leans on beta everywhere (the cheap one), explores the others. */
const logging: TargetPolicy = (c) => (c.features.domain === 'math' ? { alpha: 0.2, beta: 0.6, gamma: 0.2 } : { alpha: 0.1, beta: 0.7, gamma: 0.2 });
/** The target: mostly the right specialist. */
const target: TargetPolicy = (c) => {
  const best = { math: 'alpha', code: 'beta', writing: 'gamma' }[c.features.domain as 'math']!;
  const p: Record<string, number> = { alpha: 0.1, beta: 0.1, gamma: 0.1 };
  p[best] = 0.8;
  return p;
};

function trueValue(policy: TargetPolicy): { quality: number; cost: number } {
  let q = 0, c = 0;
  for (const d of DOMAINS) {
    const pi = policy(ctx(d));
    for (const m of MODELS) {
      q += (pi[m] ?? 0) * TRUE_QUALITY[d]![m]! / DOMAINS.length;
      c += (pi[m] ?? 0) * COST[m]! / DOMAINS.length;
    }
  }
  return { quality: q, cost: c };
}

function sample(p: Record<string, number>, u: number): string {
  let acc = 0;
  for (const m of MODELS) {
    acc += p[m] ?? 0;
    if (u < acc) return m;
  }
  return MODELS[MODELS.length - 1]!;
}

/** n logged decisions under `logging`: rewards are Bernoulli(true quality), half of them rated. */
function syntheticLog(n: number, seed: number, ratedShare = 0.5): LoggedDecision[] {
  const rng = seededRng(seed);
  const out: LoggedDecision[] = [];
  for (let i = 0; i < n; i++) {
    const domain = DOMAINS[Math.floor(rng() * DOMAINS.length)]!;
    const c = ctx(domain);
    const mu = logging(c);
    const chosen = sample(mu, rng());
    const good = rng() < TRUE_QUALITY[domain]![chosen]!;
    const rated = rng() < ratedShare;
    out.push({ id: `r${i}`, context: c, chosen, propensity: mu[chosen]!, propensities: mu, reward: rated ? (good ? 1 : 0) : null, costUsd: COST[chosen]! * (0.5 + rng()) });
  }
  return out;
}

const trueReward: OutcomeModel = (c, m) => TRUE_QUALITY[c.features.domain]![m]!;
const within = (v: number, i: { low: number; high: number }) => v >= i.low && v <= i.high;

describe('off-policy estimates on a synthetic log from a known stochastic policy', () => {
  const log = syntheticLog(6000, 21);
  const truth = trueValue(target);

  test('IPS, SNIPS and DR recover the target policy\'s true quality within their intervals, and the intervals are narrow', () => {
    const est = estimatePolicy(log, target, { rewardModel: trueReward });
    for (const name of ['ips', 'snips', 'dr'] as const) {
      const e = est.quality[name]!;
      assert.ok(within(truth.quality, e.interval), `${name}: ${truth.quality} outside [${e.interval.low}, ${e.interval.high}]`);
      assert.ok(e.interval.high - e.interval.low < 0.12, `${name} interval too wide: ${e.interval.high - e.interval.low}`);
    }
    assert.equal(est.quality.rows, log.filter((r) => r.reward !== null).length);
    assert.ok(est.quality.ess > 100 && est.quality.ess < est.quality.rows);
    assert.equal(est.unsupportedMass, 0);
  });

  test('cost is estimated from every row (rated or not) and recovers the true cost', () => {
    const est = estimatePolicy(log, target);
    assert.equal(est.cost.rows, log.length);
    for (const name of ['ips', 'snips', 'dr'] as const) {
      assert.ok(within(truth.cost, est.cost[name]!.interval), `${name}: ${truth.cost} outside ${JSON.stringify(est.cost[name]!.interval)}`);
    }
  });

  test('the 95% intervals cover the truth in most of 40 independent logs', () => {
    let covered = { ips: 0, snips: 0, dr: 0 };
    const runs = 40;
    for (let s = 0; s < runs; s++) {
      const est = estimatePolicy(syntheticLog(1500, 1000 + s), target, { rewardModel: trueReward });
      for (const name of ['ips', 'snips', 'dr'] as const) if (within(truth.quality, est.quality[name]!.interval)) covered[name]++;
    }
    for (const [name, n] of Object.entries(covered)) assert.ok(n >= 33, `${name} covered ${n}/${runs}`);
  });

  test('DR with a good reward model has a smaller variance than IPS', () => {
    const est = estimatePolicy(log, target, { rewardModel: trueReward });
    assert.ok(est.quality.dr!.stdError < 0.6 * est.quality.ips.stdError, `dr ${est.quality.dr!.stdError} vs ips ${est.quality.ips.stdError}`);
    // A useless reward model (constant) keeps DR unbiased, just no better than IPS.
    const flat = estimatePolicy(log, target, { rewardModel: () => 0.5 });
    assert.ok(within(truth.quality, flat.quality.dr!.interval));
  });

  test('ignoring the propensities gives a wrong answer the interval does not contain', () => {
    // Same log, propensities dropped (as if every choice had been certain): the estimate is then
    // the logged quality on the rows where the target agrees, which is not the target's value.
    const naive = log.map((r) => ({ ...r, propensity: 1, propensities: null }));
    const est = estimatePolicy(naive, target);
    assert.ok(!within(truth.quality, est.quality.ips.interval), `IPS without propensities still covered ${truth.quality}`);
    assert.ok(est.unsupportedMass > 0.5, 'without logged propensities most target mass is unsupported, and it is reported');
    const right = estimatePolicy(log, target);
    assert.ok(Math.abs(right.quality.snips.value - truth.quality) < Math.abs(est.quality.ips.value - truth.quality));
  });

  test('the logging policy evaluated on its own log gives the logged mean', () => {
    const est = estimatePolicy(log, logging);
    const rated = log.filter((r) => r.reward !== null);
    const logged = rated.reduce((s, r) => s + r.reward!, 0) / rated.length;
    assert.ok(Math.abs(est.quality.snips.value - logged) < 1e-9);
    assert.ok(Math.abs(est.quality.meanWeight - 1) < 1e-9);
  });

  test('a seeded bootstrap gives reproducible intervals close to the normal ones', () => {
    const a = estimatePolicy(log, target, { rewardModel: trueReward, bootstrap: { samples: 200, seed: 3 } });
    const b = estimatePolicy(log, target, { rewardModel: trueReward, bootstrap: { samples: 200, seed: 3 } });
    assert.deepEqual(a.quality.snips.bootstrap, b.quality.snips.bootstrap);
    for (const name of ['ips', 'snips', 'dr'] as const) {
      const e = a.quality[name]!;
      assert.ok(within(truth.quality, e.bootstrap!), `${name} bootstrap`);
      const width = e.interval.high - e.interval.low;
      const bw = e.bootstrap!.high - e.bootstrap!.low;
      assert.ok(bw > 0.6 * width && bw < 1.6 * width, `${name}: bootstrap width ${bw} vs normal ${width}`);
    }
  });

  test('clipping caps the weights and says how many rows it touched', () => {
    const est = estimatePolicy(log, target, { maxWeight: 2 });
    assert.ok(est.quality.clipped > 0);
    assert.ok(est.quality.maxWeight <= 2);
    const unclipped = estimatePolicy(log, target);
    assert.equal(unclipped.quality.clipped, 0);
    assert.ok(unclipped.quality.maxWeight > 2);
  });

  test('a propensity outside (0, 1] is refused, not silently used', () => {
    assert.throws(() => estimatePolicy([{ ...log[0]!, propensity: 0 }], target), /propensity/);
    assert.throws(() => estimatePolicy([{ ...log[0]!, propensity: 1.5 }], target), /propensity/);
  });
});

describe('paired difference between two policies', () => {
  const log = syntheticLog(6000, 11);

  test('a better policy has a positive lower bound against the logging policy, by DR and by SNIPS', () => {
    const truth = trueValue(target).quality - trueValue(logging).quality;
    for (const rewardModel of [trueReward, undefined]) {
      const d = qualityDifference(log, target, logging, rewardModel ? { rewardModel } : {});
      assert.ok(d.interval.low > 0, `${d.estimator}: ${JSON.stringify(d)}`);
      assert.ok(within(truth, d.interval), `${d.estimator}: ${truth} outside ${JSON.stringify(d.interval)}`);
    }
  });

  test('a policy against itself differs by exactly zero', () => {
    const d = qualityDifference(log, target, target, { rewardModel: trueReward });
    assert.ok(Math.abs(d.value) < 1e-12);
  });

  test('with no rated rows the difference is unknown (an unbounded interval)', () => {
    const d = qualityDifference(log.map((r) => ({ ...r, reward: null })), target, logging);
    assert.equal(d.rows, 0);
    assert.equal(d.interval.low, -Infinity);
  });
});

test('normal quantiles match the tables', () => {
  assert.ok(Math.abs(normalQuantile(0.975) - 1.959964) < 1e-5);
  assert.ok(Math.abs(normalQuantile(0.5)) < 1e-12);
  assert.ok(Math.abs(normalQuantile(0.01) + 2.326348) < 1e-5);
});
