import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { TrainingRow } from '../../server/store/types.ts';
import { accumulateEvidence, priorsFromEvidence } from '../../learner/priors.ts';
import { accumulateTotals, buildProfiles, modelAverages, type RowWithTokens } from '../../learner/profiles.ts';

const NOW = 1_700_000_000_000;
const DAY = 86_400_000;

function row(i: number, over: Partial<RowWithTokens>): RowWithTokens {
  return {
    id: `r${i}`, ts: NOW, queryText: `q${i}`, language: 'en', domain: 'chat', complexity: 'simple', model: 'm',
    success: true, latencyMs: 1000, costUsd: 0, rating: 3, implicitNegative: false, outputTokens: 100, ...over,
  };
}

/** coder: great at code, poor at writing; writer: the reverse; both fine at chat. Also some Chinese. */
function history(): RowWithTokens[] {
  const rows: RowWithTokens[] = [];
  let i = 0;
  for (let k = 0; k < 12; k++) {
    rows.push(row(i++, { model: 'coder', domain: 'code', rating: 5, latencyMs: 2000, outputTokens: 400 }));
    rows.push(row(i++, { model: 'writer', domain: 'code', rating: 2, latencyMs: 800, outputTokens: 150 }));
    rows.push(row(i++, { model: 'coder', domain: 'writing', rating: 2, latencyMs: 2000, outputTokens: 400 }));
    rows.push(row(i++, { model: 'writer', domain: 'writing', rating: 5, latencyMs: 800, outputTokens: 150 }));
    rows.push(row(i++, { model: 'coder', domain: 'chat', rating: 4, latencyMs: 2000, outputTokens: 400 }));
    rows.push(row(i++, { model: 'writer', domain: 'chat', rating: 4, latencyMs: 800, outputTokens: 150 }));
  }
  return rows;
}

describe('model profiles', () => {
  const rows = history();
  const priors = priorsFromEvidence(accumulateEvidence(null, rows, NOW));
  const totals = accumulateTotals(null, rows, NOW, 14);
  const profiles = buildProfiles(priors, totals);

  test('strengths and weaknesses are the domains where a model clearly beats or trails the others', () => {
    assert.deepEqual(profiles.coder!.strengths, ['domain:code']);
    assert.deepEqual(profiles.coder!.weaknesses, ['domain:writing']);
    assert.deepEqual(profiles.writer!.strengths, ['domain:writing']);
    assert.deepEqual(profiles.writer!.weaknesses, ['domain:code']);
  });

  test('rates, averages and the sample count come from the rows', () => {
    const p = profiles.coder!;
    assert.equal(p.samples, 36);
    assert.equal(p.successRate, 1);
    assert.ok(Math.abs(p.avgRating! - 11 / 3) < 1e-9);
    assert.ok(Math.abs(p.avgLatencyMs! - 2000) < 1e-9);
    const avg = modelAverages(totals);
    assert.ok(Math.abs(avg.avgOutputTokens.coder! - 400) < 1e-9);
    assert.ok(Math.abs(avg.avgOutputTokens.writer! - 150) < 1e-9);
    assert.ok(Math.abs(avg.avgLatencyMs.writer! - 800) < 1e-9);
  });

  test('the summary says in words what the numbers say', () => {
    const s = profiles.coder!.summary;
    assert.match(s, /^coder answered 36 requests/);
    assert.match(s, /rating of 3\.7 out of 5/);
    assert.match(s, /about 400 tokens/);
    assert.match(s, /clearly better than the other models at code/);
    assert.match(s, /clearly worse at writing/);
  });

  test('a language holding all of a model\'s traffic is not called a strength or weakness', () => {
    for (const p of Object.values(profiles)) {
      assert.ok(![...p.strengths, ...p.weaknesses].includes('language:en'), p.model);
    }
  });

  test('too few samples are not enough to call a specialty', () => {
    const few = [row(1, { model: 'a', domain: 'math', rating: 5 }), row(2, { model: 'b', domain: 'math', rating: 1 })];
    const p = buildProfiles(priorsFromEvidence(accumulateEvidence(null, few, NOW)), accumulateTotals(null, few, NOW, 14));
    assert.deepEqual(p.a!.strengths, []);
    assert.deepEqual(p.b!.weaknesses, []);
  });

  test('failed calls count against the success rate but not in latency or length', () => {
    const t = accumulateTotals(null, [row(1, { latencyMs: 100, outputTokens: 10 }), row(2, { success: false, latencyMs: 90_000, outputTokens: 0, rating: null })], NOW, 14);
    const p = buildProfiles([], t).m!;
    assert.equal(p.successRate, 0.5);
    assert.equal(p.avgLatencyMs, 100);
    assert.equal(modelAverages(t).avgOutputTokens.m, 10);
  });

  test('totals merged incrementally decay like one pass over all rows', () => {
    const a = [row(1, { ts: NOW - 30 * DAY, latencyMs: 4000 })];
    const b = [row(2, { ts: NOW, latencyMs: 1000 })];
    const inc = accumulateTotals(accumulateTotals(null, a, NOW - 10 * DAY, 14), b, NOW, 14);
    const all = accumulateTotals(null, [...a, ...b], NOW, 14);
    assert.ok(Math.abs(modelAverages(inc).avgLatencyMs.m! - modelAverages(all).avgLatencyMs.m!) < 1e-9);
    assert.ok(modelAverages(all).avgLatencyMs.m! < 2000, 'the fresh row dominates');
    assert.equal(inc.models.m!.rows, 2);
  });
});
