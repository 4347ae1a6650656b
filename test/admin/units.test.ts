// Unit tests of the admin page's pure parts: chart geometry, heat map winners, form parsing,
// metric deltas, the learning curve, and the session/CSRF helpers.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { cellScore, heatMap, lineChart, seriesFromTimeSeries } from '../../server/admin/charts.ts';
import { parseRulesText, parseWeightsForm } from '../../server/admin/routes/models.ts';
import { learningCurve, metricDeltas } from '../../server/admin/routes/insights.ts';
import { parseCursor } from '../../server/admin/routes/requests.ts';
import { FailureLimiter } from '../../server/http/failure-limit.ts';
import { SessionStore, parseCookies, safeEqual, safeLocalPath } from '../../server/admin/security.ts';
import { fmt, scrub } from '../../server/admin/render.ts';
import { LearnerRunner, type LearnerProgress } from '../../server/admin/learner-runner.ts';
import { silentLogger } from '../../server/logger.ts';
import { adminSql } from '../../server/store/sql/queries.ts';
import { openSqliteStore } from '../../server/store/sqlite.ts';
import type { LearnerRun, PerformanceRow } from '../../server/store/types.ts';

const perf = (model: string, domain: string, language: string, successes: number, total: number, ratingSum = 0, ratingCount = 0): PerformanceRow =>
  ({ model, domain, language, successes, total, avgLatencyMs: 100, ratingSum, ratingCount, costUsd: 0 });

describe('charts', () => {
  test('a line chart maps points into the plot area and lifts the pen over gaps', () => {
    const c = lineChart([{ name: 'a', points: [{ x: 0, y: 0 }, { x: 1, y: null }, { x: 2, y: 1 }, { x: 3, y: 0.5 }] }], { yMin: 0, yMax: 1, width: 400, height: 200 });
    assert.equal(c.empty, false);
    const line = c.lines[0]!;
    assert.equal(line.d.match(/M/g)?.length, 2, 'two segments around the gap');
    assert.equal(line.dots.length, 3);
    for (const d of line.dots) {
      assert.ok(d.cx >= c.plot.left && d.cx <= c.plot.right);
      assert.ok(d.cy >= c.plot.top && d.cy <= c.plot.bottom);
    }
    assert.equal(line.dots[0]!.cy, c.plot.bottom, 'y=0 sits on the x axis');
    assert.equal(line.dots[1]!.cy, c.plot.top, 'y=1 sits at the top');
  });

  test('a chart without data says it is empty; a fixed x range spreads ticks over the whole span', () => {
    assert.equal(lineChart([{ name: 'a', points: [{ x: 1, y: null }] }]).empty, true);
    const c = lineChart([{ name: 'a', points: [{ x: 50, y: 1 }] }], { xMin: 0, xMax: 100 });
    assert.equal(c.xTicks.length, 6);
    assert.ok(Math.abs(c.lines[0]!.dots[0]!.cx - (c.plot.left + c.plot.right) / 2) < 1);
  });

  test('time series become per-model success and rating series with nulls where a model had no traffic', () => {
    const s = seriesFromTimeSeries([
      { bucketTs: 0, model: 'a', requests: 4, successes: 3, avgLatencyMs: 1, ratingSum: 8, ratingCount: 2 },
      { bucketTs: 10, model: 'b', requests: 2, successes: 2, avgLatencyMs: 1, ratingSum: 0, ratingCount: 0 },
    ]);
    assert.deepEqual(s.buckets, [0, 10]);
    assert.deepEqual(s.success.find((x) => x.name === 'a')!.points, [{ x: 0, y: 0.75 }, { x: 10, y: null }]);
    assert.deepEqual(s.rating.find((x) => x.name === 'a')!.points, [{ x: 0, y: 4 }, { x: 10, y: null }]);
    assert.deepEqual(s.rating.find((x) => x.name === 'b')!.points, [{ x: 0, y: null }, { x: 10, y: null }]);
  });

  test('the heat map names the best model per cell, blending ratings in, and leaves thin cells blank', () => {
    const rows = [
      perf('fast', 'code', 'en', 7, 10), // unrated: 0.7
      perf('coder', 'code', 'en', 8, 10, 50, 10), // 0.5 * 0.8 + 0.5 * 1 = 0.9
      perf('large', 'code', 'en', 10, 10, 10, 10), // all ok but rated 1 star: 0.5
      perf('fast', 'chat', 'zh', 1, 2),
    ];
    assert.equal(cellScore(rows[1]!), 0.9);
    const h = heatMap(rows);
    assert.deepEqual(h.domains, ['chat', 'code']);
    assert.deepEqual(h.languages, ['en', 'zh']);
    const code = h.cells[1]!.find((c) => c.language === 'en')!;
    assert.deepEqual([code.winner, code.runnerUp, code.samples, code.level], ['coder', 'fast', 30, 4]);
    assert.equal(code.cls, h.models.find((m) => m.name === 'coder')!.cls);
    const thin = h.cells[0]!.find((c) => c.language === 'zh')!;
    assert.deepEqual([thin.winner, thin.cls, thin.samples], [null, 'none', 2]);
    assert.equal(h.cells[0]!.find((c) => c.language === 'en')!.samples, 0);
  });
});

describe('forms', () => {
  const known = (id: string) => ['a', 'b/c'].includes(id);

  test('weights form: numbers and enabled flags per model, with the API bounds', () => {
    assert.deepEqual(parseWeightsForm({ 'weight:a': '2.5', 'enabled:a': '0', 'weight:b/c': '0', _csrf: 'x' }, known), {
      entries: [{ model: 'a', weight: 2.5, enabled: false }, { model: 'b/c', weight: 0 }],
      errors: [],
    });
    for (const bad of [{ 'weight:a': '-0.1' }, { 'weight:a': '1000.5' }, { 'weight:a': 'NaN' }, { 'weight:a': 'Infinity' }, { 'weight:a': '' }, { 'weight:z': '1' }, { 'enabled:a': 'yes' }, {}]) {
      assert.ok(parseWeightsForm(bad, known).errors.length > 0, JSON.stringify(bad));
    }
  });

  test('routing rules text: one "pattern -> model" per line, split at the last arrow', () => {
    assert.deepEqual(parseRulesText('\\bsql\\b -> coder\n\n a->b -> c \r\n'), {
      rules: [{ pattern: '\\bsql\\b', model: 'coder' }, { pattern: 'a->b', model: 'c' }],
      errors: [],
    });
    assert.equal(parseRulesText('no arrow here').errors.length, 1);
    assert.equal(parseRulesText(' -> model').errors.length, 1, 'an empty pattern is refused');
    assert.equal(parseRulesText(Array.from({ length: 33 }, (_, i) => `p${i} -> m`).join('\n')).errors.length, 1, 'at most 32 rules');
  });

  test('keyset cursors parse only their own shape', () => {
    assert.deepEqual(parseCursor('1700000000000.req_abc-1'), { ts: 1700000000000, id: 'req_abc-1' });
    for (const bad of [undefined, '', 'x.y', '12', '12.', '12.a b', '12.<x>', ['1.a']]) assert.equal(parseCursor(bad), null);
  });
});

describe('learning view', () => {
  const run = (id: number, after: unknown, status: LearnerRun['status'] = 'ok'): LearnerRun =>
    ({ id, kind: 'learn', startedAt: id, finishedAt: id + 1, status, rowsRead: 1, changes: null, metricsBefore: null, metricsAfter: after, error: null });

  test('metric deltas cover numeric leaves of both sides', () => {
    assert.deepEqual(metricDeltas({ rows: 10, q: { a: 0.5 }, note: 'x' }, { rows: 12, q: { a: 0.75 }, extra: 1 }), [
      { key: 'extra', before: null, after: 1, delta: null },
      { key: 'q.a', before: 0.5, after: 0.75, delta: 0.25 },
      { key: 'rows', before: 10, after: 12, delta: 2 },
    ]);
    assert.deepEqual(metricDeltas(null, undefined), []);
  });

  test('the learning curve follows metrics shared by finished runs, oldest first, quality metrics first', () => {
    const curve = learningCurve([run(3, { rows: 5, pickedQuality: 0.8 }), run(1, { rows: 4, pickedQuality: 0.6 }), run(2, { rows: 9 }, 'failed'), run(4, { once: 1 })]);
    assert.deepEqual(curve.map((s) => s.name), ['pickedQuality', 'rows']);
    assert.deepEqual(curve[0]!.points, [{ x: 1, y: 0.6 }, { x: 3, y: 0.8 }, { x: 4, y: null }]);
  });
});

describe('security helpers', () => {
  test('only same-origin paths are accepted as redirect targets', () => {
    for (const ok of ['/', '/decisions?x=1', '/rate?before=1.a']) assert.equal(safeLocalPath(ok), ok);
    for (const bad of ['//evil.example', '/\\evil.example', 'https://evil.example', 'javascript:alert(1)', '', '/x\r\nSet-Cookie: a=b', 42, undefined]) {
      assert.equal(safeLocalPath(bad), null, String(bad));
    }
  });

  test('cookies parse by name; the first of a duplicated name wins', () => {
    assert.deepEqual(parseCookies('a=1; sy_admin=abc%3D; a=2; junk'), { a: '1', sy_admin: 'abc=' });
    assert.deepEqual(parseCookies(undefined), {});
  });

  test('sessions expire when idle and anonymous ones are evicted before logged-in ones', () => {
    let now = 0;
    const store = new SessionStore({ idleMs: 1000, maxSessions: 3, now: () => now });
    const admin = store.create(true);
    const anon = [store.create(false), store.create(false), store.create(false)];
    assert.ok(store.get(admin.id), 'the logged-in session survives a flood of anonymous ones');
    assert.equal(store.get(anon[0]!.id), null);
    assert.equal(store.size(), 3);
    now = 1500;
    assert.equal(store.get(admin.id), null, 'idle past the limit');
  });

  test('secret comparison and scrubbing', () => {
    assert.ok(safeEqual('abc', 'abc'));
    assert.ok(!safeEqual('abc', 'abd'));
    assert.ok(!safeEqual('abc', 'abcd'));
    assert.equal(scrub('key sk-1234 and sk-1234!', ['sk-1234']), 'key [REDACTED] and [REDACTED]!');
  });

  test('failed logins are throttled per address within the window', () => {
    let now = 0;
    const t = new FailureLimiter({ limit: 2, windowMs: 1000, now: () => now });
    t.fail('1.2.3.4');
    assert.equal(t.blocked('1.2.3.4'), false);
    t.fail('1.2.3.4');
    assert.equal(t.blocked('1.2.3.4'), true);
    assert.equal(t.blocked('5.6.7.8'), false);
    assert.equal(t.retryAfterS('1.2.3.4'), 1);
    now = 1500;
    assert.equal(t.blocked('1.2.3.4'), false);
  });

  test('formatters', () => {
    assert.equal(fmt.pct(0.1234), '12.3%');
    assert.equal(fmt.ms(12.4), '12 ms');
    assert.equal(fmt.ms(12_345), '12.3 s');
    assert.equal(fmt.duration(90_061_000), '1d 1h 1m');
    assert.equal(fmt.clip('a  b\nc', 3), 'a …');
    assert.equal(fmt.stars(3.6), '★★★★☆');
    assert.equal(fmt.usd(0), '$0');
  });
});

describe('learner runner', () => {
  test('one run at a time: progress while running, then the outcome, and the router reload after success', async () => {
    let finish!: (v: Record<string, unknown>) => void;
    let report!: (p: LearnerProgress) => void;
    let reloads = 0;
    const runner = new LearnerRunner((onProgress) => {
      report = onProgress;
      return new Promise((resolve) => { finish = resolve; });
    }, async () => { reloads++; }, silentLogger());
    assert.equal(runner.start(), true);
    assert.equal(runner.start(), false, 'a second start while running is refused');
    report({ phase: 'reading stored requests', fraction: 0.5 });
    assert.deepEqual([runner.status().running, runner.status().progress?.fraction], [true, 0.5]);
    finish({ rowsRead: 3 });
    await runner.idle();
    const s = runner.status();
    assert.deepEqual([s.running, s.outcome, s.summary, reloads], [false, 'ok', { rowsRead: 3 }, 1]);
    assert.equal(runner.start(), true, 'a new run may start once the last one is over');
    finish({});
    await runner.idle();
  });

  test('a failed run is reported with its message and does not reload the router', async () => {
    let reloads = 0;
    const runner = new LearnerRunner(async () => { throw new Error('lock held by pid 7'); }, async () => { reloads++; }, silentLogger());
    runner.start();
    await runner.idle();
    assert.deepEqual([runner.status().outcome, runner.status().error, reloads], ['failed', 'lock held by pid 7', 0]);
  });

  test('without a learner the button is unavailable', () => {
    const runner = new LearnerRunner(null, async () => {}, silentLogger());
    assert.equal(runner.available, false);
    assert.equal(runner.start(), false);
  });
});

describe('admin queries', () => {
  test('every admin query is answered from an index, never by scanning the requests table', async () => {
    const store = await openSqliteStore({ path: ':memory:' });
    try {
      const plans: string[] = [];
      for (const { sql, params } of [adminSql.nextUnrated({ ts: 1, id: 'a' }), adminSql.nextUnrated(null), adminSql.unratedSince(1),
        adminSql.countSince(1), adminSql.latestRequest(), adminSql.domains(), adminSql.languages()]) {
        const rows = await store.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, params);
        plans.push(rows.map((r) => r.detail).join(' | '));
      }
      assert.equal(plans.length, 7);
      for (const plan of plans) {
        assert.doesNotMatch(plan, /SCAN (q|queries|f|user_feedback)\b(?! USING)/, plan);
        if (/\b(q|queries)\b/.test(plan)) assert.match(plan, /USING (COVERING )?INDEX/, plan);
      }
    } finally {
      await store.close();
    }
  });
});
