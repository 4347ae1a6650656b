// The Store contract: the same cases against every engine. SQLite in a temp file; PostgreSQL is a
// real server started in a temp dir (test/helpers/postgres.ts), a fresh database per store.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Domain, Language, QueryFeatures, RoutingDecision, RoutingMethod } from '../../router/types.ts';
import { openPostgresStore } from '../../server/store/postgres.ts';
import { openSqliteStore } from '../../server/store/sqlite.ts';
import type { FeedbackRecord, RequestRecord, Store } from '../../server/store/types.ts';
import { storedParts } from '../../server/store/parts.ts';
import { postgresUnavailable, startPostgres, type TestPostgres } from '../helpers/postgres.ts';

let dir = '';
let server: TestPostgres | null = null;
const pgSkip = postgresUnavailable();
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'switchyard-contract-'));
  if (!pgSkip) server = await startPostgres();
});
after(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

interface Engine {
  name: 'sqlite' | 'postgres';
  skip: string | false;
  /** A new, empty database; `open` opens a store on it (again, for a second instance). */
  database(): Promise<string>;
  open(location: string): Promise<Store>;
}

let counter = 0;
const engines: Engine[] = [
  {
    name: 'sqlite', skip: false,
    database: async () => path.join(dir, `store-${++counter}.db`),
    open: (file) => openSqliteStore({ path: file }),
  },
  {
    name: 'postgres', skip: pgSkip ? `skipped: ${pgSkip}` : false,
    database: () => server!.createDatabase(),
    open: (url) => openPostgresStore({ url, poolSize: 4 }),
  },
];

const features = (domain: Domain, language: Language): QueryFeatures => ({
  language, mixed: false, domain, complexity: 'simple', lengthBucket: 's', chars: 20, hasCode: false, depth: 1,
});

interface Spec {
  id: string;
  ts: number;
  model?: string | null;
  domain?: Domain;
  language?: Language;
  method?: RoutingMethod;
  status?: 'ok' | 'error';
  latencyMs?: number;
}

function request(s: Spec): RequestRecord {
  const status = s.status ?? 'ok';
  return {
    id: s.id, ts: s.ts, endpoint: '/v1/chat/completions', queryText: `q ${s.id}`, messageCount: 2,
    requestedModel: null, stream: true, features: features(s.domain ?? 'chat', s.language ?? 'en'),
    finalModel: s.model === undefined ? 'model-a' : s.model, status, httpStatus: status === 'ok' ? 200 : 502,
    latencyMs: s.latencyMs ?? 100, answer: status === 'ok' ? 'answer' : null, inputTokens: 5, outputTokens: 7,
    costUsd: 0.01, error: status === 'ok' ? null : 'upstream failed', demo: true, clientKeyHash: 'abc123',
  };
}

function decision(s: Spec): RoutingDecision {
  return {
    method: s.method ?? 'keywords', selected: s.model ?? 'model-a',
    candidates: [{ model: s.model ?? 'model-a', score: 0.7, parts: { keywords: 0.7 } }, { model: 'model-z', score: 0.2 }],
    confidence: 0.7, reasoning: 'because', features: features(s.domain ?? 'chat', s.language ?? 'en'),
    timings: { features: 0.1, knn: 1.5 }, judge: { selectedModel: 'model-a', confidence: 0.6, reasoning: 'judge says' },
  };
}

const feedback = (requestId: string, rating: number, source: FeedbackRecord['source'] = 'user', ts = 10_000): FeedbackRecord =>
  ({ requestId, ts, rating, comment: null, source });

async function seed(store: Store, specs: Spec[], ratings: FeedbackRecord[] = []): Promise<void> {
  for (const s of specs) store.recordRequest(request(s), decision(s), []);
  for (const f of ratings) store.recordFeedback(f);
  await store.flush();
}

const ids = (rows: { id: string }[]): string[] => rows.map((r) => r.id);

for (const engine of engines) {
describe(`Store contract on ${engine.name}`, { skip: engine.skip }, () => {
  const tmpStore = async (): Promise<Store> => engine.open(await engine.database());

  describe('listRequests and getRequest', () => {
    let store: Store;
    before(async () => {
      store = await tmpStore();
      await seed(store, [
        { id: 'r1', ts: 1_000, model: 'model-a', domain: 'code', language: 'en', method: 'keywords' },
        { id: 'r2', ts: 2_000, model: 'model-b', domain: 'math', language: 'zh', method: 'knn' },
        { id: 'r3', ts: 3_000, model: 'model-a', domain: 'math', language: 'en', method: 'judge', status: 'error' },
        { id: 'r4', ts: 3_000, model: 'model-b', domain: 'code', language: 'zh', method: 'knn' },
        { id: 'r5', ts: 5_000, model: null, domain: 'chat', language: 'ja', method: 'weights', status: 'error' },
      ], [feedback('r1', 5), feedback('r1', 3, 'admin'), feedback('r2', 2), feedback('r4', 4, 'implicit')]);
    });
    after(() => store.close());

    test('lists newest first, ties broken by id descending', async () => {
      assert.deepEqual(ids(await store.listRequests({})), ['r5', 'r4', 'r3', 'r2', 'r1']);
    });

    test('filters by model, domain, language, method and status, alone and combined', async () => {
      assert.deepEqual(ids(await store.listRequests({ model: 'model-a' })), ['r3', 'r1']);
      assert.deepEqual(ids(await store.listRequests({ domain: 'code' })), ['r4', 'r1']);
      assert.deepEqual(ids(await store.listRequests({ language: 'zh' })), ['r4', 'r2']);
      assert.deepEqual(ids(await store.listRequests({ method: 'knn' })), ['r4', 'r2']);
      assert.deepEqual(ids(await store.listRequests({ status: 'error' })), ['r5', 'r3']);
      assert.deepEqual(ids(await store.listRequests({ model: 'model-b', domain: 'code', method: 'knn' })), ['r4']);
    });

    test('filters by rated, unrated and mean rating', async () => {
      assert.deepEqual(ids(await store.listRequests({ rated: true })), ['r4', 'r2', 'r1']);
      assert.deepEqual(ids(await store.listRequests({ rated: false })), ['r5', 'r3']);
      assert.deepEqual(ids(await store.listRequests({ minRating: 4 })), ['r4', 'r1']);
    });

    test('pages with limit/offset and with a (ts, id) keyset that keeps rows sharing a millisecond', async () => {
      assert.deepEqual(ids(await store.listRequests({ limit: 2 })), ['r5', 'r4']);
      assert.deepEqual(ids(await store.listRequests({ limit: 2, offset: 2 })), ['r3', 'r2']);
      assert.deepEqual(ids(await store.listRequests({ beforeTs: 3_000, beforeId: 'r4', limit: 2 })), ['r3', 'r2']);
      assert.deepEqual(ids(await store.listRequests({ beforeTs: 3_000 })), ['r2', 'r1']);
    });

    test('getRequest returns the record with its decision, attempts and feedback; unknown ids give null', async () => {
      const r1 = await store.getRequest('r1');
      assert.equal(r1?.stream, true);
      assert.equal(r1?.demo, true);
      assert.equal(r1?.clientKeyHash, 'abc123');
      assert.deepEqual(r1?.features, features('code', 'en'));
      assert.deepEqual(r1?.decision, decision({ id: 'r1', ts: 1_000, domain: 'code', language: 'en' }));
      assert.deepEqual(r1?.feedback.map((f) => f.rating), [5, 3]);
      assert.equal(await store.getRequest('nope'), null);
    });
  });

  describe('stored fields', () => {
    test('huge query text and answers are truncated; attempts come back in order', async () => {
      const store = await tmpStore();
      const big = request({ id: 'big', ts: 1 });
      store.recordRequest({ ...big, queryText: 'q'.repeat(30_000), answer: 'a'.repeat(60_000) }, null, [
        { requestId: 'big', ts: 1, model: 'model-b', attempt: 1, status: 'timeout', httpStatus: null, latencyMs: 30_000,
          inputTokens: 0, outputTokens: 0, costUsd: 0, error: 'timed out' },
        { requestId: 'big', ts: 2, model: 'model-a', attempt: 2, status: 'ok', httpStatus: 200, latencyMs: 80.4,
          inputTokens: 5, outputTokens: 7, costUsd: 0.01, error: null },
      ]);
      await store.flush();
      const got = await store.getRequest('big');
      assert.equal(got?.queryText.length, 20_000);
      assert.equal(got?.answer?.length, 50_000);
      assert.equal(got?.decision, null);
      assert.deepEqual(got?.calls.map((c) => [c.model, c.status, c.latencyMs]), [['model-b', 'timeout', 30_000], ['model-a', 'ok', 80]]);
      await store.close();
    });
  });

  describe('stored parts', () => {
    test('content parts, tools and tool calls round-trip through parts_json; rows without them read null', async () => {
      const store = await tmpStore();
      const parts = storedParts({
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: [{ type: 'text', text: 'Weather in Zürich? \u{1F324}' }, { type: 'image', source: { kind: 'base64', mediaType: 'image/png', data: 'iVBORw0KGgo=' } }] },
          { role: 'assistant', content: [{ type: 'tool_call', id: 'call_1', name: 'get_weather', arguments: '{"city":"Zürich"}' }] },
          { role: 'tool', content: [{ type: 'tool_result', toolCallId: 'call_1', content: '{"sky":"clear"} key sk-ant-abcdefghijkl' }] },
        ],
        tools: [{ name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } }],
        toolChoice: { type: 'tool', name: 'get_weather' },
        answer: { toolCalls: [{ id: 'call_2', name: 'get_weather', arguments: '{"city":"Bern"}' }], finishReason: 'tool_calls' },
      });
      store.recordRequest({ ...request({ id: 'pp1', ts: 1 }), parts }, null, []);
      store.recordRequest(request({ id: 'pp2', ts: 2 }), null, []);
      const queued = await store.getRequest('pp1');
      await store.flush();
      const got = await store.getRequest('pp1');
      assert.deepEqual(got?.parts, parts);
      assert.deepEqual(queued?.parts, parts);
      assert.deepEqual(got?.parts?.messages[1]?.parts[1], { type: 'image', mediaType: 'image/png', source: 'base64', bytes: 8 });
      assert.equal(got?.parts?.answer?.finishReason, 'tool_calls');
      assert.deepEqual(got?.parts?.messages[3]?.parts[0], { type: 'tool_result', toolCallId: 'call_1', content: '{"sky":"clear"} key [redacted]', chars: 39 });
      assert.equal((await store.getRequest('pp2'))?.parts, null);
      // A page of requests leaves the parts out (getRequest reads them).
      assert.deepEqual((await store.listRequests({})).map((r) => [r.id, r.parts]), [['pp2', undefined], ['pp1', undefined]]);
      await store.close();
    });
  });

  describe('weights, state and raw SQL', () => {
    test('setWeights upserts: omitted fields keep their value, new models default to weight 1 and enabled', async () => {
      const store = await tmpStore();
      await store.setWeights([{ model: 'model-a', weight: 2 }, { model: 'model-b', enabled: false }]);
      await store.setWeights([{ model: 'model-a', enabled: false }]);
      const weights = (await store.getWeights()).map(({ model, weight, enabled }) => ({ model, weight, enabled }));
      assert.deepEqual(weights, [
        { model: 'model-a', weight: 2, enabled: false },
        { model: 'model-b', weight: 1, enabled: false },
      ]);
      await assert.rejects(store.setWeights([{ model: 'model-a', weight: -1 }]), RangeError);
      await store.close();
    });

    test('state round-trips JSON and a missing key is null', async () => {
      const store = await tmpStore();
      assert.equal(await store.getState('missing'), null);
      await store.setState('profile', { a: [1, 2], b: 'x' });
      await store.setState('profile', { a: [3] });
      assert.deepEqual(await store.getState('profile'), { a: [3] });
      await assert.rejects(store.setState('bad', undefined), TypeError);
      await store.close();
    });
  });

  describe('learner reads and writes', () => {
    test('trainingRows: answered requests after sinceTs, oldest first, with mean rating and implicit negatives', async () => {
      const store = await tmpStore();
      await seed(store, [
        { id: 't1', ts: 100 },
        { id: 't2', ts: 200, status: 'error', latencyMs: 900 },
        { id: 't3', ts: 300, model: null, status: 'error' },
        { id: 't4', ts: 400, domain: 'math', language: 'zh' },
      ], [feedback('t1', 4), feedback('t1', 5, 'eval'), feedback('t2', 1, 'implicit'), feedback('t4', 3, 'implicit')]);
      const rows = await store.trainingRows(0, 10);
      assert.deepEqual(rows.map((r) => [r.id, r.success, r.rating, r.implicitNegative]), [
        ['t1', true, 4.5, false],
        ['t2', false, 1, true],
        ['t4', true, 3, false],
      ]);
      assert.deepEqual(rows[2], {
        id: 't4', ts: 400, queryText: 'q t4', language: 'zh', domain: 'math', complexity: 'simple', model: 'model-a',
        success: true, latencyMs: 100, costUsd: 0.01, rating: 3, implicitNegative: false, propensity: null,
      });
      assert.deepEqual(ids(await store.trainingRows(100, 1)), ['t2']);
      assert.equal((await store.trainingRows(400, 10)).length, 0);
      await store.close();
    });

    test('learner runs are recorded from start to finish and listed newest first', async () => {
      const store = await tmpStore();
      const first = await store.startLearnerRun(1_000);
      await store.finishLearnerRun(first, { status: 'failed', rowsRead: 0, error: 'no data' });
      const second = await store.startLearnerRun(2_000);
      await store.finishLearnerRun(second, {
        status: 'ok', rowsRead: 42, changes: { priors: 3 }, metricsBefore: { acc: 0.5 }, metricsAfter: { acc: 0.6 },
      });
      const third = await store.startLearnerRun(3_000);
      const runs = await store.learnerRuns();
      assert.deepEqual(runs.map((r) => [r.id, r.status]), [[third, 'running'], [second, 'ok'], [first, 'failed']]);
      assert.deepEqual(
        { rowsRead: runs[1]?.rowsRead, changes: runs[1]?.changes, after: runs[1]?.metricsAfter, error: runs[1]?.error },
        { rowsRead: 42, changes: { priors: 3 }, after: { acc: 0.6 }, error: null },
      );
      assert.equal(runs[2]?.error, 'no data');
      assert.equal(runs[0]?.finishedAt, null);
      await store.close();
    });

    test('commitLearnedVersion writes priors, state and the priors pointer together; a failure changes nothing', async () => {
      const store = await tmpStore();
      assert.deepEqual(await store.readPriors(), { version: null, rows: [] });
      const prior = (alpha: number, model = 'model-a') => ({ model, domain: 'code', language: 'en', alpha, beta: 1.5 });
      for (let v = 1; v <= 4; v++) {
        await store.commitLearnedVersion({ version: v, priors: [prior(v), prior(v, 'model-b')], state: { [`learned.v${v}`]: { v }, 'learned.version': v } });
      }
      assert.equal(await store.getState('priors.version'), 4);
      assert.equal(await store.getState('learned.version'), 4);
      assert.deepEqual(await store.readPriors(), { version: 4, rows: [prior(4), prior(4, 'model-b')] });
      assert.deepEqual((await store.readPriors(2)).rows, [prior(2), prior(2, 'model-b')]);
      // A duplicate cell fails the insert after the old rows of that version were deleted: all rolled back.
      await assert.rejects(store.commitLearnedVersion({ version: 5, priors: [prior(5), prior(5)], state: { 'learned.version': 5 } }));
      assert.equal(await store.getState('learned.version'), 4);
      assert.deepEqual((await store.readPriors()).version, 4);
      assert.deepEqual((await store.readPriors(5)).rows, []);
      // Rewriting a version (a run that died before its swap) replaces its rows.
      await store.commitLearnedVersion({ version: 4, priors: [prior(40)], state: {} });
      assert.deepEqual((await store.readPriors(4)).rows, [prior(40)]);
      assert.deepEqual(await store.pruneLearnedVersions(3, 4), [1, 2]);
      assert.deepEqual((await store.readPriors(2)).rows, []);
      assert.equal(await store.getState('learned.v2'), null);
      assert.deepEqual(await store.getState('learned.v3'), { v: 3 });
      assert.deepEqual(await store.pruneLearnedVersions(3, 4), []);
      await store.close();
    });
  });

  describe('admin aggregates', () => {
    test('stats: counts, success rate, latency percentiles and feedback over the window', async () => {
      const store = await tmpStore();
      const specs: Spec[] = [];
      for (let i = 1; i <= 20; i++) specs.push({ id: `s${i}`, ts: 1_000 + i, latencyMs: i * 10, status: i % 5 === 0 ? 'error' : 'ok' });
      specs.push({ id: 'old', ts: 10, latencyMs: 99_999 });
      await seed(store, specs, [feedback('s1', 5, 'user', 2_000), feedback('s2', 2, 'user', 2_000), feedback('old', 1, 'user', 10)]);
      const s = await store.stats(1_000);
      assert.deepEqual(
        { ...s, costUsd: Math.round(s.costUsd * 100) / 100 },
        {
          sinceTs: 1_000, requests: 20, errors: 4, successRate: 0.8, p50LatencyMs: 100, p95LatencyMs: 190, costUsd: 0.2,
          inputTokens: 100, outputTokens: 140, feedbackCount: 2, avgRating: 3.5,
        },
      );
      const empty = await store.stats(1_000_000);
      assert.deepEqual([empty.requests, empty.successRate, empty.p95LatencyMs, empty.avgRating], [0, 0, 0, null]);
      await store.close();
    });

    test('timeSeries: per bucket and final model, with success counts and ratings', async () => {
      const store = await tmpStore();
      await seed(store, [
        { id: 'a', ts: 60_000, model: 'model-a', latencyMs: 100 },
        { id: 'b', ts: 61_000, model: 'model-a', latencyMs: 300, status: 'error' },
        { id: 'c', ts: 61_500, model: 'model-b' },
        { id: 'd', ts: 125_000, model: 'model-a' },
        { id: 'e', ts: 1_000, model: 'model-a' },
      ], [feedback('a', 4, 'user', 200_000), feedback('a', 2, 'admin', 200_000), feedback('c', 5, 'user', 200_000)]);
      const points = await store.timeSeries(60_000, 60_000);
      assert.deepEqual(points, [
        { bucketTs: 60_000, model: 'model-a', requests: 2, successes: 1, avgLatencyMs: 200, ratingSum: 6, ratingCount: 2 },
        { bucketTs: 60_000, model: 'model-b', requests: 1, successes: 1, avgLatencyMs: 100, ratingSum: 5, ratingCount: 1 },
        { bucketTs: 120_000, model: 'model-a', requests: 1, successes: 1, avgLatencyMs: 100, ratingSum: 0, ratingCount: 0 },
      ]);
      await assert.rejects(store.timeSeries(0, 0), RangeError);
      await store.close();
    });
  });

  describe('admin page reads', () => {
    test('unrated answers, counts since, the newest request and the cells seen', async () => {
      const store = await tmpStore();
      assert.equal(await store.latestRequest(), null);
      assert.equal(await store.nextUnrated(), null);
      await seed(store, [
        { id: 'u1', ts: 1_000, domain: 'code', language: 'en' },
        { id: 'u2', ts: 2_000, domain: 'math', language: 'zh' },
        { id: 'u3', ts: 2_000, status: 'error' },
        { id: 'u4', ts: 3_000 },
        { id: 'u5', ts: 4_000 },
      ], [feedback('u5', 4, 'user'), feedback('u4', 2, 'implicit'), feedback('u2', 3, 'shadow')]);
      // u5 is rated by a person; implicit and shadow signals do not count; u3 failed.
      assert.equal(await store.nextUnrated(), 'u4');
      assert.equal(await store.nextUnrated({ ts: 3_000, id: 'u4' }), 'u2');
      assert.equal(await store.nextUnrated({ ts: 2_000, id: 'u2' }), 'u1');
      assert.equal(await store.nextUnrated({ ts: 1_000, id: 'u1' }), null);
      assert.equal(await store.unratedSince(2_000), 2);
      assert.equal(await store.countSince(2_000), 4);
      assert.deepEqual(await store.latestRequest(), { ts: 4_000, id: 'u5' });
      assert.deepEqual(await store.seenCells(), { domains: ['chat', 'code', 'math'], languages: ['en', 'zh'] });
      assert.equal(await store.countRequests(), 5);
      await store.close();
    });
  });

  describe('learner reads', () => {
    test('answered counts, output tokens by id, the n-th newest answer and late ratings', async () => {
      const store = await tmpStore();
      await seed(store, [
        { id: 'a1', ts: 100 }, { id: 'a2', ts: 200 }, { id: 'a3', ts: 300, model: null, status: 'error' }, { id: 'a4', ts: 400 },
      ], [feedback('a1', 4, 'user', 150)]);
      assert.equal(await store.countAnswered(100, 400), 3);
      assert.equal(await store.countAnswered(150, 350), 1);
      assert.deepEqual([...(await store.outputTokens(200, 300)).entries()].sort(), [['a2', 7], ['a3', 7]]);
      assert.equal(await store.nthNewestAnsweredTs(400, 1), 400);
      assert.equal(await store.nthNewestAnsweredTs(400, 2), 200);
      assert.equal(await store.nthNewestAnsweredTs(399, 3), null);
      // A rating given after the learner read a1 (at 150), replacing the one it saw.
      store.recordFeedback(feedback('a1', 1, 'user', 500));
      store.recordFeedback(feedback('a2', 1, 'implicit', 600));
      await store.flush();
      const late = await store.lateFeedbackRows(450, 1_000, 400);
      assert.deepEqual(late.map(({ before, now }) => [before.id, before.rating, now.rating, before.implicitNegative, now.implicitNegative]), [
        ['a1', 4, 1, false, false],
        ['a2', null, 1, false, true],
      ]);
      const asOf = await store.trainingRows(0, 10, 200);
      assert.deepEqual(asOf.map((r) => [r.id, r.rating]), [['a1', 4], ['a2', null], ['a4', null]]);
      await store.close();
    });
  });

  describe('the write path', () => {
    test('a replaced rating moves the totals by the difference; a duplicate request id is ignored; eval scores may be continuous', async () => {
      const store = await tmpStore();
      await seed(store, [{ id: 'p1', ts: 1, domain: 'code', language: 'en' }], [feedback('p1', 2)]);
      store.recordRequest(request({ id: 'p1', ts: 2 }), null, []);
      store.recordFeedback(feedback('p1', 5));
      store.recordFeedback(feedback('p1', 3.75, 'eval'));
      await store.flush();
      const cell = (await store.performance()).find((p) => p.model === 'model-a' && p.domain === 'code' && p.language === 'en');
      assert.deepEqual([cell?.total, cell?.successes, cell?.ratingCount, cell?.ratingSum], [1, 1, 2, 8.75]);
      assert.deepEqual((await store.getRequest('p1'))?.feedback.map((f) => [f.source, f.rating]), [['user', 5], ['eval', 3.75]]);
      assert.equal((await store.getRequest('p1'))?.ts, 1, 'the first record with an id wins');
      assert.throws(() => store.recordFeedback(feedback('p1', 7)), RangeError);
      await store.close();
    });

    test('a request id seen again (same batch or already stored) is ignored and counted once; every attempt counts for its model', async () => {
      const store = await tmpStore();
      await seed(store, [{ id: 'x1', ts: 1 }]);
      const attempts = (id: string) => [
        { requestId: id, ts: 2, model: 'model-b', attempt: 1, status: 'error' as const, httpStatus: 500, latencyMs: 40, inputTokens: 0, outputTokens: 0, costUsd: 0, error: 'boom' },
        { requestId: id, ts: 2, model: 'model-c', attempt: 1, status: 'skipped' as const, httpStatus: null, latencyMs: 0, inputTokens: 0, outputTokens: 0, costUsd: 0, error: 'circuit open' },
        { requestId: id, ts: 3, model: 'model-a', attempt: 1, status: 'ok' as const, httpStatus: 200, latencyMs: 60, inputTokens: 5, outputTokens: 7, costUsd: 0.5, error: null },
      ];
      store.recordRequest(request({ id: 'x1', ts: 5 }), null, attempts('x1'));
      store.recordRequest(request({ id: 'x2', ts: 2 }), null, attempts('x2'));
      store.recordRequest(request({ id: 'x2', ts: 3 }), null, attempts('x2'));
      await store.flush();
      assert.equal(await store.countRequests(), 2);
      assert.equal((await store.getRequest('x1'))?.ts, 1);
      assert.equal((await store.getRequest('x2'))?.ts, 2);
      const cells = (await store.performance()).map((p) => [p.model, p.total, p.successes, p.avgLatencyMs, p.costUsd]);
      assert.deepEqual(cells, [['model-a', 2, 2, 80, 0.51], ['model-b', 1, 0, 40, 0]], 'x1 counted once (its final model), x2 once per attempt; skipped attempts do not count');
      await store.close();
    });

    test('a queued request is visible before its commit; flush() makes it visible to another instance', async () => {
      const location = await engine.database();
      const a = await engine.open(location);
      const b = await engine.open(location);
      a.recordRequest(request({ id: 'q1', ts: 1 }), decision({ id: 'q1', ts: 1 }), []);
      assert.equal(await a.requestExists('q1'), true);
      assert.equal((await a.getRequest('q1'))?.id, 'q1');
      await a.flush();
      assert.equal(a.pending(), 0);
      assert.equal(await b.requestExists('q1'), true);
      assert.deepEqual((await b.getRequest('q1'))?.decision, decision({ id: 'q1', ts: 1 }));
      await Promise.all([a.close(), b.close()]);
    });

    test('two instances writing at once: every request stored, running totals add up', async () => {
      const location = await engine.database();
      const [a, b] = [await engine.open(location), await engine.open(location)];
      for (let i = 0; i < 300; i++) {
        (i % 2 ? a : b).recordRequest(request({ id: `m${i}`, ts: i, domain: i % 3 ? 'code' : 'math' }), null, []);
        if (i % 50 === 0) await Promise.all([a.flush(), b.flush()]);
      }
      await Promise.all([a.flush(), b.flush()]);
      assert.equal(await a.countRequests(), 300);
      const totals = (await b.performance()).reduce((n, p) => n + p.total, 0);
      assert.equal(totals, 300);
      await Promise.all([a.close(), b.close()]);
    });

    test('text keeps emoji, CJK, quotes and backslashes; NUL and lone surrogates are stored as U+FFFD', async () => {
      const store = await tmpStore();
      const text = 'émoji 😀 中文 "quoted" \\back\\slash\nnew line \\u0000 literal';
      store.recordRequest({ ...request({ id: 't1', ts: 1 }), queryText: `${text}\u0000end`, answer: `a\ud800b` }, null, []);
      store.recordFeedback({ ...feedback('t1', 4), comment: `c\u0000d` });
      await store.flush();
      const got = await store.getRequest('t1');
      assert.equal(got?.queryText, `${text}\ufffdend`);
      assert.equal(got?.answer, 'a\ufffdb');
      assert.equal(got?.feedback[0]?.comment, 'c\ufffdd');
      await store.close();
    });
  });

  describe('evaluation and shadow comparisons', () => {
    test('the decision log has routed decisions only, oldest first, with their ratings', async () => {
      const store = await tmpStore();
      await seed(store, [
        { id: 'd1', ts: 10, method: 'learned' }, { id: 'd2', ts: 20, method: 'explicit' }, { id: 'd3', ts: 30, method: 'knn' },
        { id: 'd4', ts: 30, method: 'request_rules' },
      ], [feedback('d3', 4, 'user', 40), feedback('d3', 2, 'implicit', 50)]);
      const log = await store.decisionLog({ ts: 0, id: '' }, 10);
      assert.deepEqual(log.map((r) => [r.id, r.method, r.candidates]), [['d1', 'learned', ['model-a', 'model-z']], ['d3', 'knn', ['model-a', 'model-z']]]);
      assert.deepEqual(log[1]?.ratings, [{ source: 'user', rating: 4, ts: 40 }, { source: 'implicit', rating: 2, ts: 50 }]);
      assert.deepEqual((await store.decisionLog({ ts: 10, id: 'd1' }, 10)).map((r) => r.id), ['d3']);
      await store.close();
    });

    test('shadow candidates exclude compared and shadow rows; comparisons are listed and their spend summed', async () => {
      const store = await tmpStore();
      await seed(store, [{ id: 's1', ts: 10 }, { id: 's2', ts: 20 }, { id: 's3', ts: 30, status: 'error' }]);
      store.recordRequest({ ...request({ id: 'sh1', ts: 25 }), endpoint: 'shadow' }, null, []);
      await store.flush();
      assert.deepEqual((await store.shadowCandidates({ ts: 0, id: '' }, 100, 10)).map((c) => c.id), ['s1', 's2']);
      const comparison = {
        ts: 40, requestId: 's1', requestModel: 'model-a', shadowModel: 'model-b', shadowRequestId: 'sh1', verdict: 'shadow' as const,
        firstOrder: 'shadow' as const, secondOrder: 'shadow' as const, judgeModel: 'judge', costUsd: 0.25, reasoning: 'better', error: null,
      };
      await store.recordShadowComparison(comparison);
      await store.recordShadowComparison({ ...comparison, ts: 50, requestId: 's2', verdict: null, firstOrder: null, secondOrder: null, costUsd: 0.5, error: 'judge failed' });
      assert.deepEqual((await store.shadowCandidates({ ts: 0, id: '' }, 100, 10)).map((c) => c.id), []);
      const listed = await store.shadowComparisons(10);
      assert.deepEqual(listed.map((c) => [c.requestId, c.verdict, c.queryText, c.error]), [['s2', null, 'q s2', 'judge failed'], ['s1', 'shadow', 'q s1', null]]);
      assert.equal(await store.shadowSpend(45), 0.5);
      assert.equal(await store.shadowSpend(0), 0.75);
      await store.close();
    });
  });

  describe('learned versions across instances', () => {
    test('index snapshots live where the engine says; the learner lock admits one run at a time', async () => {
      const location = await engine.database();
      const [a, b] = [await engine.open(location), await engine.open(location)];
      if (a.indexSnapshots === 'store') {
        const files = [{ name: 'knn.json', data: Buffer.from('{"v":1}') }, { name: 'knn-1.hnsw', data: Buffer.from([0, 1, 2, 255]) }];
        await a.saveIndexSnapshot(1, files);
        await a.saveIndexSnapshot(2, files.slice(0, 1));
        assert.deepEqual(await b.loadIndexSnapshot(1), [...files].sort((x, y) => (x.name < y.name ? -1 : 1)));
        assert.deepEqual(await b.pruneLearnedVersions(2, 2), [1]);
        assert.equal(await b.loadIndexSnapshot(1), null);
      } else {
        assert.equal(await a.loadIndexSnapshot(1), null);
      }
      if (a.tryLearnerLock && b.tryLearnerLock) {
        const held = await a.tryLearnerLock();
        assert.ok(held);
        assert.equal(await b.tryLearnerLock(), null, 'another instance is refused while the lock is held');
        await held.release();
        const next = await b.tryLearnerLock();
        assert.ok(next, 'released: the next run may start');
        await next.release();
      }
      await Promise.all([a.close(), b.close()]);
    });
  });
});
}
