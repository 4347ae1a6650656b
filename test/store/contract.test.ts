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
        success: true, latencyMs: 100, costUsd: 0.01, rating: 3, implicitNegative: false,
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

  // CONTRACT_EXTRA
});
}
