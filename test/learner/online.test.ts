import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadConfig } from '../../server/config.ts';
import { openSqliteStore } from '../../server/store/sqlite.ts';
import { BuiltinEmbedder } from '../../router/embedder.ts';
import { loadDataset } from '../../learner/eval-data.ts';
import { blindMixQualityAt, onlineRating, runOnline, type OnlineReport } from '../../learner/online.ts';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/*
 * specialists.jsonl (scripts/make-specialists.mjs): 720 queries in three families (arithmetic word
 * problems, multiple-choice exam questions, open-ended instructions). Three equally priced models
 * each score 0.9 on one family and 0.2 on the others; their names say nothing about it.
 */
const SPECIALISTS = path.join(root, 'test/fixtures/eval/specialists.jsonl');
const CHECKER = path.resolve(root, '../shared/tools/check-eval-report.mjs');
const routing = { ...loadConfig({}).routing, keywordRules: loadConfig({}).keywordRules };
const embedder = new BuiltinEmbedder();
const rows = new Map(loadDataset(SPECIALISTS).rows.map((r) => [r.id, r]));

/** Share of the last three days' queries that went to the model best on them. */
function rightShare(r: OnlineReport): number {
  const tail = r.stream.filter((s) => s.day >= r.days - 3);
  const right = tail.filter((s) => {
    const o = rows.get(s.id)!.outcomes;
    return o[s.model]!.score === Math.max(...Object.values(o).map((x) => x.score));
  });
  return right.length / tail.length;
}

describe('online replay: learning from the chosen model\'s outcome only', () => {
  let rated: OnlineReport;
  let unrated: OnlineReport;
  before(async () => {
    rated = await runOnline({ datasetPath: SPECIALISTS, seed: 1 }, { embedder, routing, openStore: openSqliteStore });
    unrated = await runOnline({ datasetPath: SPECIALISTS, seed: 1, ratedFraction: 0 }, { embedder, routing, openStore: openSqliteStore });
  });

  test('with 20% of answers rated, days 8-10 send at least 85% of queries to the right specialist', () => {
    const share = rightShare(rated);
    assert.ok(share >= 0.85, `right specialist for ${(100 * share).toFixed(1)}% of days 8-10`);
    assert.ok(rated.daily[9]!.quality > rated.daily[0]!.quality + 0.3, JSON.stringify(rated.daily.map((d) => d.quality)));
  });

  test('with no rating at all, nothing is learned about quality and no model takes more than half of days 8-10', () => {
    for (const [model, share] of Object.entries(unrated.tail.shares)) assert.ok(share <= 0.5, `${model} took ${(100 * share).toFixed(1)}%`);
    assert.ok(rightShare(unrated) < 0.5, 'answered, unrated requests are no evidence that a model is good');
  });

  test('the stream has every query once, in day order, with its propensity and a seeded 20% rated', () => {
    assert.equal(rated.stream.length, rows.size);
    assert.equal(new Set(rated.stream.map((s) => s.id)).size, rows.size);
    rated.stream.forEach((s, i) => {
      assert.ok(s.propensity > 0 && s.propensity <= 1, `propensity ${s.propensity}`);
      if (i) assert.ok(s.day >= rated.stream[i - 1]!.day);
    });
    assert.ok(rated.stream.some((s) => s.propensity < 1), 'the router explores, and says with what probability');
    const share = rated.stream.filter((s) => s.rated).length / rated.stream.length;
    assert.ok(Math.abs(share - 0.2) < 0.05, `rated share ${share}`);
    assert.equal(rated.daily.length, 10);
  });

  test('daily quality and cost are what the stream\'s choices give', () => {
    for (const d of rated.daily) {
      const part = rated.stream.filter((s) => s.day === d.day);
      const q = part.reduce((s, e) => s + rows.get(e.id)!.outcomes[e.model]!.score, 0) / part.length;
      const c = part.reduce((s, e) => s + rows.get(e.id)!.outcomes[e.model]!.cost_usd, 0);
      assert.ok(Math.abs(q - d.quality) < 1e-9 && Math.abs(c - d.cost_usd) < 1e-9);
    }
  });

  test('the same seed replays the same stream', async () => {
    const again = await runOnline({ datasetPath: SPECIALISTS, seed: 1, days: 10 }, { embedder, routing, openStore: openSqliteStore });
    assert.deepEqual(again.stream, rated.stream);
  });

  test('the report passes the shared contract checker', { skip: existsSync(CHECKER) ? false : 'no ../shared/tools beside the project' }, async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'online-report-'));
    const file = path.join(dir, 'report.json');
    await writeFile(file, JSON.stringify(rated));
    const { stdout } = await run(process.execPath, [CHECKER, SPECIALISTS, file]);
    assert.match(stdout, /report is consistent with the dataset/);
    assert.match(stdout, /last 3 days: quality/);
  });

  test('npm run eval -- --online runs from the command line and writes the report', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'online-cli-'));
    const out = path.join(dir, 'r.json');
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'learner/eval-cli.ts', '--dataset', SPECIALISTS, '--online', '--days', '3', '--rated-fraction', '0.5', '--seed', '2', '--out', out],
      { cwd: root, env: { ...process.env, SWITCHYARD_CONFIG: '', EMBEDDER: 'builtin' } });
    assert.match(stdout, /online replay of specialists.jsonl: 720 queries over 3 days, 50.0% rated/);
    assert.match(stdout, /days 0, 1, 2: quality/);
    assert.ok(existsSync(out));
  });
});

describe('online replay parts', () => {
  test('ratings are 1 + round(4 · score)', () => {
    assert.deepEqual([0, 0.1, 0.2, 0.5, 0.9, 1].map(onlineRating), [1, 1, 2, 3, 5, 5]);
  });

  test('the blind mix at a cost interpolates between single models', () => {
    const singles = [{ quality: 0.5, cost: 1 }, { quality: 0.9, cost: 3 }];
    assert.equal(blindMixQualityAt(singles, 2), 0.7);
    assert.equal(blindMixQualityAt(singles, 5), 0.9);
    assert.equal(blindMixQualityAt(singles, 0.5), -Infinity);
  });
});
