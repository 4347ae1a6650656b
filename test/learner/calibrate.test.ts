// Calibration: the learner fits how much to trust small prior cells and kNN neighbours from the
// data itself (leave-one-out), so real differences are kept and noise is shrunk away.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { accumulateEvidence } from '../../learner/priors.ts';
import { calibrateKnn, calibratePriorStrength, PRIOR_SHRINK_GRID, PRIOR_STRENGTH_GRID } from '../../learner/calibrate.ts';
import { priorsFromEvidence, defaultPriorOptions } from '../../learner/priors.ts';
import { queryKey } from '../../learner/job.ts';
import { mulberry32 } from '../../router/bandit.ts';
import { BuiltinEmbedder } from '../../router/embedder.ts';
import { createTextIndex, type Outcome, type TextIndex } from '../../router/knn.ts';
import type { TrainingRow } from '../../server/store/types.ts';
import { codeQuery, writingQuery } from './synthetic-history.ts';

const NOW = 1_800_000_000_000;

function row(i: number, model: string, domain: string, rating: number, text = `q${i}`): TrainingRow {
  return { id: `r${i}-${model}`, ts: NOW - 1000 + (i % 500), queryText: text, language: 'en', domain, complexity: 'simple', model, success: true, latencyMs: 100, costUsd: 0, rating, implicitNegative: false };
}

describe('prior shrinkage strength', () => {
  test('real domain differences get weak shrinkage', () => {
    const rows: TrainingRow[] = [];
    for (let i = 0; i < 400; i++) {
      const domain = i % 2 ? 'code' : 'writing';
      rows.push(row(i, 'coder', domain, domain === 'code' ? 5 : 1));
      rows.push(row(i, 'writer', domain, domain === 'code' ? 1 : 5));
    }
    const fit = calibratePriorStrength(accumulateEvidence(null, rows, NOW), rows);
    assert.ok(fit);
    assert.ok(fit.priorStrength <= 4, `fitted ${fit.priorStrength}`);
  });

  test('pure noise around one mean per model gets strong shrinkage', () => {
    const rng = mulberry32(7);
    const rows: TrainingRow[] = [];
    const domains = ['code', 'writing', 'math', 'chat', 'science', 'business'];
    for (let i = 0; i < 600; i++) {
      const domain = domains[i % domains.length]!;
      rows.push(row(i, 'a', domain, rng() < 0.3 ? 5 : 1));
      rows.push(row(i, 'b', domain, rng() < 0.2 ? 5 : 1));
    }
    const fit = calibratePriorStrength(accumulateEvidence(null, rows, NOW), rows);
    assert.ok(fit);
    assert.ok(fit.priorStrength >= 64, `fitted ${fit.priorStrength}`);
    assert.ok(PRIOR_SHRINK_GRID.includes(fit.priorStrength));
  });

  test('domains that are harder for every model alike: shrunk hard where gaps were observed, not where only levels were', () => {
    // Each domain has its own difficulty, the same for both models (a is 0.1 better everywhere).
    // Cells predict each score well, and the gap between the models not at all.
    const rng = mulberry32(11);
    const domains = ['code', 'writing', 'math', 'chat', 'science', 'business'];
    const difficulty = [0.15, 0.85, 0.3, 0.7, 0.45, 0.6];
    const rows = (sameQuery: boolean): TrainingRow[] => {
      const out: TrainingRow[] = [];
      for (let i = 0; i < 600; i++) {
        const d = i % domains.length;
        out.push(row(i, 'a', domains[d]!, rng() < difficulty[d]! + 0.1 ? 5 : 1, sameQuery ? `q${i}` : `a${i}`));
        out.push(row(i, 'b', domains[d]!, rng() < difficulty[d]! ? 5 : 1, sameQuery ? `q${i}` : `b${i}`));
      }
      return out;
    };
    const paired = rows(true);
    const gapsFit = calibratePriorStrength(accumulateEvidence(null, paired, NOW), paired)!;
    assert.ok(gapsFit.priorStrength >= 64, `with gaps observed: ${gapsFit.priorStrength}`);
    const single = rows(false);
    const levelsFit = calibratePriorStrength(accumulateEvidence(null, single, NOW), single)!;
    assert.ok(levelsFit.priorStrength <= 16, `with one model per query: ${levelsFit.priorStrength}`);
  });

  test('too little data gives no fit', () => {
    const rows = [row(1, 'a', 'code', 5), row(2, 'a', 'code', 1)];
    assert.equal(calibratePriorStrength(accumulateEvidence(null, rows, NOW), rows), null);
  });
});

describe('kNN trust', () => {
  const embedder = new BuiltinEmbedder(256);

  async function build(rows: TrainingRow[]): Promise<TextIndex> {
    const index = createTextIndex(embedder);
    const byText = new Map<string, Outcome[]>();
    for (const r of rows) byText.set(r.queryText, [...(byText.get(r.queryText) ?? []), { model: r.model, success: true, latencyMs: 1, rating: r.rating! }]);
    await index.addTexts([...byText.entries()].map(([text, outcomes]) => ({ id: queryKey(text), text, outcomes })));
    return index;
  }

  test('neighbours that predict outcomes better than the priors are trusted (small λ, lower error)', async () => {
    // Same detected domain for both kinds, so only the text tells them apart.
    const rows: TrainingRow[] = [];
    for (let i = 0; i < 120; i++) {
      const code = i % 2 === 0;
      const text = code ? codeQuery(i) : writingQuery(i);
      rows.push(row(i, 'coder', 'other', code ? 5 : 1, text));
      rows.push(row(i, 'writer', 'other', code ? 1 : 5, text));
    }
    const priors = priorsFromEvidence(accumulateEvidence(null, rows, NOW), defaultPriorOptions);
    const fit = await calibrateKnn({ index: await build(rows), priors, rows, keyOf: queryKey });
    assert.ok(fit);
    assert.ok(fit.priorStrength <= 2, `fitted ${fit.priorStrength}`);
    assert.ok(fit.mse < fit.msePriorOnly / 2, `mse ${fit.mse} vs prior ${fit.msePriorOnly}`);
  });

  test('neighbours whose outcomes are noise are not trusted (large λ)', async () => {
    const rng = mulberry32(3);
    const rows: TrainingRow[] = [];
    for (let i = 0; i < 120; i++) {
      const text = i % 2 === 0 ? codeQuery(i) : writingQuery(i);
      rows.push(row(i, 'coder', 'other', rng() < 0.5 ? 5 : 1, text));
      rows.push(row(i, 'writer', 'other', rng() < 0.5 ? 5 : 1, text));
    }
    const priors = priorsFromEvidence(accumulateEvidence(null, rows, NOW), defaultPriorOptions);
    const fit = await calibrateKnn({ index: await build(rows), priors, rows, keyOf: queryKey });
    assert.ok(fit);
    assert.ok(fit.priorStrength >= 32, `fitted ${fit.priorStrength}`);
    assert.ok(PRIOR_STRENGTH_GRID.includes(fit.priorStrength));
  });
});
