import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadConfig } from '../../server/config.ts';
import { openSqliteStore } from '../../server/store/sqlite.ts';
import { BuiltinEmbedder } from '../../router/embedder.ts';
import { runEval } from '../../learner/eval.ts';
import { DatasetError, loadDataset, parseDataset, splitDataset } from '../../learner/eval-data.ts';
import { renderSvg, type EvalReport } from '../../learner/eval-report.ts';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TINY = path.join(root, 'test/fixtures/eval/tiny.jsonl');
const CHECKER = path.resolve(root, '../shared/tools/check-eval-report.mjs');

/*
 * tiny.jsonl: 20 queries t01..t20; odd ids ask for writing, even ids for code. Three models:
 *   big   scores 0.8 everywhere, costs $0.01 a call
 *   mid   scores 0.5 everywhere, costs $0.002 a call
 *   small scores 1.0 on code and 0.0 on writing, costs nothing (local)
 * Seed 1 holds out t04 t07 t14 t12 t19 t08: four code queries and two writing ones.
 */
const TEST_IDS = ['t04', 't07', 't14', 't12', 't19', 't08'];
const near = (a: number, b: number) => Math.abs(a - b) < 1e-9;

let report: EvalReport;
const routing = { ...loadConfig({}).routing, keywordRules: loadConfig({}).keywordRules };
const embedder = new BuiltinEmbedder(128);

function policy(name: string) {
  const p = report.policies.find((x) => x.name === name);
  assert.ok(p, `policy ${name} is in the report`);
  return p;
}

describe('offline eval on the tiny fixture', () => {
  before(async () => {
    report = await runEval({ datasetPath: TINY, seed: 1 }, { embedder, routing, openStore: openSqliteStore });
  });

  test('the split is deterministic, clean and covers every query', () => {
    assert.deepEqual(report.test_ids, TEST_IDS);
    assert.equal(report.train_ids.length, 14);
    assert.equal(new Set([...report.train_ids, ...report.test_ids]).size, 20);
    assert.deepEqual(report.models, ['big', 'mid', 'small']);
  });

  test('single-model policies score what the model scores on the test queries', () => {
    const big = policy('single:big').points[0]!;
    assert.ok(near(big.quality, 0.8) && near(big.cost_usd, 6 * 0.01));
    const mid = policy('single:mid').points[0]!;
    assert.ok(near(mid.quality, 0.5) && near(mid.cost_usd, 6 * 0.002));
    const small = policy('single:small').points[0]!;
    assert.ok(near(small.quality, 4 / 6) && near(small.cost_usd, 0));
  });

  test('the oracle takes small on code and big on writing', () => {
    const oracle = policy('oracle').points[0]!;
    assert.deepEqual(oracle.choices, { t04: 'small', t07: 'big', t14: 'small', t12: 'small', t19: 'big', t08: 'small' });
    assert.ok(near(oracle.quality, (4 * 1 + 2 * 0.8) / 6));
    assert.ok(near(oracle.cost_usd, 2 * 0.01));
  });

  test('random is seeded: the same choices every run, scored by hand', async () => {
    const random = policy('random').points[0]!;
    assert.deepEqual(random.choices, { t04: 'small', t07: 'big', t14: 'big', t12: 'mid', t19: 'small', t08: 'mid' });
    // small on code 1.0, big 0.8 twice, mid 0.5 twice, small on writing 0.0.
    assert.ok(near(random.quality, (1 + 2 * 0.8 + 2 * 0.5 + 0) / 6));
    assert.ok(near(random.cost_usd, 2 * 0.01 + 2 * 0.002));
    const again = await runEval({ datasetPath: TINY, seed: 1, trainFractions: [1] }, { embedder, routing, openStore: openSqliteStore });
    assert.deepEqual(again.policies.find((p) => p.name === 'random')!.points[0]!.choices, random.choices);
    assert.deepEqual(again.policies.find((p) => p.name === 'router')!.points.map((p) => p.choices), policy('router').points.map((p) => p.choices));
  });

  test('the router sweeps its knob from cheapest to best, with a choice for every test query', () => {
    const points = policy('router').points;
    assert.deepEqual(points.map((p) => p.knob), [...points.map((p) => p.knob)].sort((a, b) => a! - b!));
    assert.equal(points[0]!.knob, 0);
    assert.equal(points[points.length - 1]!.knob, 1);
    for (const p of points) assert.deepEqual(Object.keys(p.choices).sort(), [...TEST_IDS].sort());
    assert.ok(policy('knn').points.length > 1);
    assert.ok(policy('rules').points.length === 1);
  });

  test('the headline is the cheapest router point within 95% of the best single model', () => {
    const h = report.headline;
    assert.equal(h.best_single, 'big');
    assert.ok(near(h.target_quality, 0.76));
    const reach = policy('router').points.filter((p) => p.quality >= 0.76);
    const cheapest = reach.length ? Math.min(...reach.map((p) => p.cost_usd)) : null;
    assert.equal(h.router_cost_usd, cheapest);
    assert.ok(near(h.cost_saved_at_95, cheapest === null ? 0 : Math.max(0, 1 - cheapest / 0.06)));
    assert.equal(report.skipped[0]!.name, 'judge');
  });

  test('the learning curve trains on growing shares of the train part', () => {
    assert.deepEqual(report.learning_curve.map((p) => p.train_fraction), [0.1, 0.25, 0.5, 1]);
    assert.deepEqual(report.learning_curve.map((p) => p.train_size), [1, 4, 7, 14]);
  });

  test('the report passes the shared contract checker', { skip: existsSync(CHECKER) ? false : `shared checker not found at ${CHECKER}` }, async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'eval-report-'));
    try {
      const file = path.join(dir, 'report.json');
      await writeFile(file, JSON.stringify(report));
      const { stdout } = await run(process.execPath, [CHECKER, TINY, file]);
      assert.match(stdout, /report is consistent with the dataset/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('the chart is a self-contained SVG naming every policy', () => {
    const svg = renderSvg(report);
    assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.ok(svg.trimEnd().endsWith('</svg>'));
    for (const p of report.policies) assert.ok(svg.includes(`>${p.name}</text>`), p.name);
  });

  test('restricting the catalogue drops the other models everywhere', async () => {
    const r = await runEval({ datasetPath: TINY, seed: 1, models: ['big', 'small'], trainFractions: [1] }, { embedder, routing, openStore: openSqliteStore });
    assert.deepEqual(r.models, ['big', 'small']);
    assert.ok(!r.policies.some((p) => p.name === 'single:mid'));
    for (const p of r.policies) for (const pt of p.points) for (const m of Object.values(pt.choices)) assert.ok(m === 'big' || m === 'small');
  });
});

describe('eval datasets', () => {
  test('a bad line is reported with its file and line number', () => {
    const good = '{"id":"a","query":"q","outcomes":{"m":{"score":0.5,"output_tokens":1,"cost_usd":0}}}';
    assert.throws(() => parseDataset(`${good}\n{"id":"b","query":"q","outcomes":{"m":{"output_tokens":1,"cost_usd":0}}}\n`, 'x.jsonl'),
      (e: Error) => e instanceof DatasetError && /^x\.jsonl:2: outcomes\.m\.score: Required/.test(e.message));
    assert.throws(() => parseDataset(`${good}\nnot json\n`, 'x.jsonl'), /x\.jsonl:2: not valid JSON/);
    assert.throws(() => parseDataset(`${good}\n${good}\n`, 'x.jsonl'), /x\.jsonl:2: id "a" appears twice/);
    assert.throws(() => parseDataset(`${good}\n{"id":"c","query":"q","outcomes":{"n":{"score":1,"output_tokens":1,"cost_usd":0}}}`, 'x.jsonl'), /x\.jsonl:2: models n differ/);
    assert.throws(() => parseDataset(`${good.replace('0.5', '1.5')}`, 'x.jsonl'), /x\.jsonl:1: outcomes\.m\.score/);
  });

  test('prices come from the models file beside the dataset', () => {
    const ds = loadDataset(TINY);
    assert.deepEqual(ds.prices?.big, { usdPerMtokIn: 10, usdPerMtokOut: 100 });
  });

  test('the split does not depend on anything but the seed and the fraction', () => {
    const ds = loadDataset(TINY);
    const a = splitDataset(ds.rows, 7, 0.3);
    const b = splitDataset([...ds.rows], 7, 0.3);
    assert.deepEqual(a.test.map((r) => r.id), b.test.map((r) => r.id));
    assert.notDeepEqual(splitDataset(ds.rows, 8, 0.3).test.map((r) => r.id), a.test.map((r) => r.id));
  });
});

describe('eval CLI', () => {
  let dir: string;
  before(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'eval-cli-')); });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  test('npm run eval writes the report and the chart and prints the headline', async () => {
    const out = path.join(dir, 'r.json');
    const svg = path.join(dir, 'c.svg');
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'learner/eval-cli.ts', '--dataset', TINY, '--out', out, '--svg', svg, '--seed', '1'], { cwd: root, env: { ...process.env, SWITCHYARD_CONFIG: '' } });
    assert.match(stdout, /cost saved at 95% of the best single model's quality: \d+\.\d%/);
    assert.match(stdout, /single:big\s+-\s+0\.8000\s+0\.0600/);
    const written = JSON.parse(await readFile(out, 'utf8')) as EvalReport;
    assert.deepEqual(written.test_ids, TEST_IDS);
    assert.match(await readFile(svg, 'utf8'), /<svg /);
  });

  test('a missing dataset is a clear error', async () => {
    await assert.rejects(run(process.execPath, ['--import', 'tsx', 'learner/eval-cli.ts', '--dataset', path.join(dir, 'nope.jsonl')], { cwd: root }),
      (e: Error & { stderr: string; code: number }) => e.code === 1 && /eval: .*nope\.jsonl: no such file/.test(e.stderr));
  });
});
