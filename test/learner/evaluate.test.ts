import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { openSqliteStore, type SqliteStore } from '../../server/store/sqlite.ts';
import type { CandidateModel } from '../../router/types.ts';
import { readDecisionLog, runEvaluation } from '../../learner/evaluate-run.ts';
import { alwaysModel, swapGate, toLoggedDecisions } from '../../learner/evaluate.ts';
import type { TargetPolicy } from '../../learner/ope.ts';
import { runLearner } from '../../learner/job.ts';
import { BuiltinEmbedder } from '../../router/embedder.ts';
import { decision, LOGGING, PRICE, queryFor, recordLoggedTraffic, request, SKILL, trueQuality } from './logged-traffic.ts';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NOW = Date.now();
const models: CandidateModel[] = ['coder', 'writer'].map((id) => ({
  id, description: '', tags: [], weight: 1, costPer1kInput: PRICE[id]! / 2, costPer1kOutput: PRICE[id]! / 2, healthy: true,
}));
const specialist: TargetPolicy = (c) => ({ [c.features.domain === 'code' ? 'coder' : 'writer']: 1 });
const contrarian: TargetPolicy = (c) => ({ [c.features.domain === 'code' ? 'writer' : 'coder']: 1 });

describe('the decision log read from the store', () => {
  let dir: string;
  let store: SqliteStore;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ope-log-'));
    store = await openSqliteStore({ path: path.join(dir, 'switchyard.db') });
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('holds routed decisions with propensities and ratings; explicit, rule and shadow rows stay out; missing propensities are counted', async () => {
    const t = NOW - 10_000;
    const code = request('a', t, queryFor('code', 1), 'coder');
    store.recordRequest(code, decision('coder', code.features, { propensities: { coder: 0.25, writer: 0.75 }, policy: { name: 'p' } }), []);
    const old = request('b', t + 1, queryFor('writing', 2), 'writer');
    store.recordRequest(old, decision('writer', old.features), []); // logged before propensities existed
    const fallback = request('c', t + 2, queryFor('code', 3), 'writer');
    store.recordRequest(fallback, decision('coder', fallback.features, { propensities: { coder: 1 } }), []);
    const explicit = request('d', t + 3, 'hi', 'coder', { requestedModel: 'coder' });
    store.recordRequest(explicit, { ...decision('coder', explicit.features), method: 'explicit' }, []);
    const rule = request('e', t + 4, 'hi', 'writer');
    store.recordRequest(rule, { ...decision('writer', rule.features), method: 'request_rules' }, []);
    store.recordRequest(request('f', t + 5, 'hi', 'writer', { endpoint: 'shadow' }), null, []);
    store.recordFeedback({ requestId: 'a', ts: t + 10, rating: 4, comment: null, source: 'user' });
    store.recordFeedback({ requestId: 'a', ts: t + 11, rating: 2, comment: null, source: 'shadow' });
    store.recordFeedback({ requestId: 'b', ts: t + 12, rating: 2, comment: null, source: 'implicit' });
    await store.flush();

    const rows = await readDecisionLog(store, t);
    assert.deepEqual(rows.map((r) => r.id), ['a', 'b', 'c']);
    assert.deepEqual(rows[0]!.propensities, { coder: 0.25, writer: 0.75 });
    assert.deepEqual(rows[0]!.policy, { name: 'p' });
    assert.deepEqual(rows[0]!.candidates, ['coder', 'writer']);
    assert.equal(rows[1]!.propensities, null);
    assert.equal(rows[2]!.finalModel, 'writer');

    const { log, summary } = toLoggedDecisions(rows);
    assert.equal(log[0]!.propensity, 0.25);
    assert.equal(log[0]!.reward, ((4 - 1) / 4 + (2 - 1) / 4) / 2, 'user and shadow ratings both count');
    assert.equal(log[1]!.propensity, 1);
    assert.equal(log[1]!.reward, null, 'an implicit signal alone is not a reward');
    assert.deepEqual(summary, {
      rows: 3, rated: 1, missingPropensity: 1, explored: 1, exploredByMethod: { learned: 1 }, rowsByMethod: { learned: 3 }, fallbacks: 1, implicitOnly: 1,
    });
    // Paging by (ts, id) reads the same rows.
    const paged = await readDecisionLog(store, t, 1);
    assert.deepEqual(paged.map((r) => r.id), ['a', 'b', 'c']);
  });
});

describe('npm run learn -- --evaluate', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ope-eval-'));
    const store = await openSqliteStore({ path: path.join(dir, 'switchyard.db') });
    recordLoggedTraffic(store, 3000, NOW - 3600_000, 5);
    await store.close();
  });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  test('estimates each fixed model within its interval from a stochastic log, and records the run as kind evaluate', async () => {
    const store = await openSqliteStore({ path: path.join(dir, 'switchyard.db') });
    try {
      const result = await runEvaluation({ store, dataDir: dir, models });
      assert.equal(result.version, null);
      assert.equal(result.report.summary.rows, 3000);
      assert.equal(result.report.summary.missingPropensity, 0);
      assert.equal(result.report.summary.explored, 3000);
      const byName = new Map(result.report.policies.map((p) => [p.name, p]));
      for (const m of ['coder', 'writer']) {
        const p = byName.get(`always ${m}`)!;
        const truth = trueQuality(m, m);
        for (const e of [p.quality.dr!, p.quality.snips, p.quality.ips]) {
          assert.ok(truth >= e.interval.low && truth <= e.interval.high, `${m}: ${truth} outside ${JSON.stringify(e.interval)}`);
        }
        assert.ok(Math.abs(p.cost.dr!.value - PRICE[m]!) < 1e-9, 'cost of a fixed model is its price');
      }
      assert.equal(byName.get('always cheapest')!.quality.dr!.value, byName.get('always writer')!.quality.dr!.value);
      assert.match(result.table, /always coder/);
      assert.match(result.table, /quality DR \[95%\]/);
      const runs = await store.learnerRuns(5, 'evaluate');
      assert.equal(runs.length, 1);
      assert.equal(runs[0]!.id, result.runId);
      assert.equal(runs[0]!.kind, 'evaluate');
      assert.equal(runs[0]!.rowsRead, 3000);
      const stored = runs[0]!.metricsAfter as { policies: { name: string; quality: { dr: { value: number } } }[] };
      assert.equal(stored.policies.find((p) => p.name === 'always coder')!.quality.dr.value, byName.get('always coder')!.quality.dr!.value);
      assert.equal((await store.learnerRuns(5, 'learn')).length, 0);
      assert.equal(result.report.policies.some((p) => p.name.startsWith('learned')), false, 'no learned state yet');
    } finally {
      await store.close();
    }
  });

  test('after a learner run, the learned state\'s policy is estimated too, near its true quality, with a premium over the blind mix', async () => {
    const store = await openSqliteStore({ path: path.join(dir, 'switchyard.db') });
    try {
      const learned = await runLearner({ store, dataDir: dir, embedder: new BuiltinEmbedder(), settleMs: 0, replay: false });
      assert.equal(learned.status, 'ok', learned.error ?? '');
      const result = await runEvaluation({ store, dataDir: dir, models });
      assert.equal(result.version, learned.version);
      const p = result.report.policies.find((x) => x.name === `learned v${learned.version}`)!;
      const truth = trueQuality('coder', 'writer');
      assert.ok(truth >= p.quality.dr!.interval.low && truth <= p.quality.dr!.interval.high, `${truth} outside ${JSON.stringify(p.quality.dr)}`);
      assert.ok(p.blindMix && p.blindMix.premium > 0.1, JSON.stringify(p.blindMix));
      assert.ok(result.report.policies.some((x) => x.name === `learned v${learned.version} knob 1`));
    } finally {
      await store.close();
    }
  });

  test('the CLI prints the table and the recorded run', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'learner/cli.ts', '--data-dir', dir, '--evaluate', '--since-days', '1'],
      { cwd: root, env: { ...process.env, SWITCHYARD_CONFIG: '', EMBEDDER: 'builtin' } });
    assert.match(stdout, /off-policy evaluation of the last 1 days/);
    assert.match(stdout, /decision log: 3000 routed decisions, \d+ rated/);
    assert.match(stdout, /always cheapest/);
    assert.match(stdout, /recorded as learner run \d+ \(kind evaluate\)/);
  });

  test('--json without --evaluate is a usage error', async () => {
    await assert.rejects(run(process.execPath, ['--import', 'tsx', 'learner/cli.ts', '--data-dir', dir, '--json'], { cwd: root, env: { ...process.env, SWITCHYARD_CONFIG: '' } }),
      (e: Error & { code: number; stderr: string }) => e.code === 2 && /go with --evaluate/.test(e.stderr));
  });
});

describe('the swap gate', () => {
  let dir: string;
  let log: ReturnType<typeof toLoggedDecisions>['log'];
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ope-gate-'));
    const store = await openSqliteStore({ path: path.join(dir, 'switchyard.db') });
    recordLoggedTraffic(store, 2000, NOW - 3600_000, 9);
    await store.flush();
    log = toLoggedDecisions(await readDecisionLog(store, 0)).log;
    await store.close();
  });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  test('a new state that routes better is swapped in', () => {
    const g = swapGate(log, specialist, alwaysModel('writer', models).policy);
    assert.equal(g.swap, true, g.reason);
    assert.ok(g.difference!.interval.low > 0);
    const truth = trueQuality('coder', 'writer') - trueQuality('writer', 'writer');
    assert.ok(truth >= g.difference!.interval.low && truth <= g.difference!.interval.high, g.reason);
  });

  test('a new state that routes worse is refused, and the reason says why', () => {
    const g = swapGate(log, contrarian, specialist);
    assert.equal(g.swap, false);
    assert.match(g.reason, /lower bound < -0\.02, keeping the current state/);
  });

  test('with too few rated decisions the log cannot judge, and the swap goes ahead', () => {
    const g = swapGate(log.slice(0, 40), contrarian, specialist);
    assert.equal(g.swap, true);
    assert.match(g.reason, /not enough to compare/);
    assert.equal(g.difference, null);
  });

  test('the log is what the known logging policy produced', () => {
    const coderShare = log.filter((r) => r.chosen === 'coder').length / log.length;
    assert.ok(Math.abs(coderShare - LOGGING.coder) < 0.05);
    assert.ok(SKILL.code!.coder! > SKILL.code!.writer!);
  });
});
