import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../server/config.ts';
import { openSqliteStore, type SqliteStore } from '../../server/store/sqlite.ts';
import type { LearnedVersionWrite } from '../../server/store/types.ts';
import { BuiltinEmbedder, type Embedder } from '../../router/embedder.ts';
import { createTextIndex, KnnStage, loadTextIndex } from '../../router/knn.ts';
import { createRouter } from '../../router/index.ts';
import type { CandidateModel } from '../../router/types.ts';
import { runLearner, type LearnerOptions } from '../../learner/job.ts';
import { LearnerBusyError } from '../../learner/lock.ts';
import { currentVersion, loadLearnedState } from '../../learner/state.ts';
import { codeQuery, recordHistory, writingQuery } from './synthetic-history.ts';

const MODELS = ['coder', 'writer', 'cheap'];
const T0 = 1_700_000_000_000;
const HOUR = 3_600_000;

let dir: string;
let store: SqliteStore;
const embedder = new BuiltinEmbedder(128);

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'learner-job-'));
  store = await openSqliteStore({ path: path.join(dir, 'switchyard.db'), flushMs: 5 });
});

afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

/** Records history (queries numbered from `firstQuery`) and flushes; returns the last ts used. */
async function history(perDomain: number, startTs: number, idPrefix = 'h', firstQuery = 0): Promise<number> {
  const last = recordHistory({ store, models: MODELS, perDomain, startTs, idPrefix, firstQuery });
  await store.flush();
  return last;
}

const learn = (lastTs: number, extra: Partial<LearnerOptions> = {}) =>
  runLearner({ store, dataDir: dir, embedder, now: () => lastTs + HOUR, ...extra });

/** A router wired like the gateway's: learned state from the store, kNN index from its version. */
async function learnedRouter() {
  const routing = loadConfig({}).routing;
  const knn = new KnnStage(createTextIndex(embedder));
  const router = createRouter({
    config: { ...routing, explorationRate: 0, judgeEnabled: false, keywordRules: [] },
    embedder,
    knnStage: knn,
    loadLearned: async () => {
      const state = await loadLearnedState(store, dir);
      const index = state?.indexDir ? await loadTextIndex(state.indexDir, embedder) : null;
      if (index) knn.useIndex(index);
      return state;
    },
  });
  await router.reload();
  return router;
}

const candidates: CandidateModel[] = MODELS.map((id) => ({
  id, description: '', tags: [], weight: 1, costPer1kInput: 0.001, costPer1kOutput: 0.002, healthy: true,
}));

interface RunRow { status: string; rows_read: number; error: string | null; changes_json: string | null; metrics_after_json: string | null }
const runs = () => store.all<RunRow>('SELECT status, rows_read, error, changes_json, metrics_after_json FROM learner_runs ORDER BY id');

describe('learner run', () => {
  test('the router prefers the model that is better in a domain, and only in that domain', async () => {
    const last = await history(20, T0);
    const result = await learn(last);
    assert.equal(result.status, 'ok', result.error ?? '');
    assert.equal(result.version, 1);
    assert.equal(result.rowsRead, 20 * 2 * MODELS.length);
    const router = await learnedRouter();
    for (let i = 500; i < 505; i++) {
      const code = await router.route({ requestId: `c${i}`, text: codeQuery(i), depth: 1, qualityThreshold: 1 }, candidates);
      const writing = await router.route({ requestId: `w${i}`, text: writingQuery(i), depth: 1, qualityThreshold: 1 }, candidates);
      assert.equal(code.selected, 'coder', code.reasoning);
      assert.equal(writing.selected, 'writer', writing.reasoning);
    }
    const state = await loadLearnedState(store, dir);
    assert.deepEqual(state!.profiles.coder!.strengths, ['domain:code']);
    assert.ok(Math.abs(state!.avgOutputTokens.coder! - 400) < 1e-6);
  });

  test('the run is recorded with rows read, the priors that moved and replay metrics', async () => {
    const last = await history(10, T0);
    await learn(last);
    const [run] = await runs();
    assert.equal(run!.status, 'ok');
    assert.equal(run!.rows_read, 60);
    const changes = JSON.parse(run!.changes_json!) as { version: number; priors: unknown[] };
    assert.equal(changes.version, 1);
    assert.ok(changes.priors.length > 0);
    const after = JSON.parse(run!.metrics_after_json!) as { agreement: number; comparableQueries: number };
    assert.equal(after.comparableQueries, 20);
    assert.equal(after.agreement, 1, 'every query was answered by all models; the picks are the best ones');
  });

  test('a second run reads only the rows stored since the first and grows the index', async () => {
    const first = await history(10, T0);
    const r1 = await learn(first);
    const second = await history(5, first + 1000, 'h2', 100);
    const r2 = await learn(second);
    assert.equal(r1.rowsRead, 60);
    assert.equal(r2.status, 'ok', r2.error ?? '');
    assert.equal(r2.rowsRead, 30);
    assert.equal(r2.full, false);
    assert.equal(r2.version, 2);
    const state = await loadLearnedState(store, dir);
    const index = await loadTextIndex(state!.indexDir!, embedder);
    assert.equal(index!.size, 20 + 10, 'one entry per distinct query');
    const r3 = await learn(second);
    assert.equal(r3.rowsRead, 0);
    assert.equal(r3.version, 2, 'nothing new: the version stays');
  });

  test('a different routing index (the built-in TF-IDF, then an embedding model) turns the next run into a full rebuild', async () => {
    const last = await history(4, T0);
    await learn(last);
    const inner = new BuiltinEmbedder(64);
    const other: Embedder = { name: 'stand-in-embedding-model', dim: 64, embed: (t) => inner.embed(t) };
    const r = await learn(last, { embedder: other });
    assert.equal(r.full, true);
    assert.match(r.fullReason!, /routing index changed from tfidf to stand-in-embedding-model/);
    assert.equal(r.rowsRead, 24, 'everything is read again');
    const state = await loadLearnedState(store, dir);
    const index = await loadTextIndex(state!.indexDir!, other);
    assert.equal(index!.kind, 'dense');
    assert.equal(index!.size, 8);
  });

  test('rows sharing one millisecond across page boundaries are each read exactly once', async () => {
    const features = { language: 'en', mixed: false, domain: 'chat', complexity: 'simple', lengthBucket: 's', chars: 5, hasCode: false, depth: 1 } as const;
    for (let i = 0; i < 25; i++) {
      store.recordRequest({
        id: `same-${String(i).padStart(2, '0')}`, ts: T0, endpoint: 'x', queryText: `hello ${i}`, messageCount: 1, requestedModel: null, stream: false,
        features, finalModel: 'cheap', status: 'ok', httpStatus: 200, latencyMs: 10, answer: null, inputTokens: 1, outputTokens: 1, costUsd: 0, error: null, demo: false,
      }, null, []);
    }
    await store.flush();
    const r1 = await learn(T0, { pageSize: 10 });
    assert.equal(r1.rowsRead, 25);
    const r2 = await learn(T0, { pageSize: 10 });
    assert.equal(r2.rowsRead, 0);
  });

  test('rows younger than the settle time wait for the next run', async () => {
    const last = await history(5, T0);
    const early = await runLearner({ store, dataDir: dir, embedder, now: () => last + 1000, settleMs: 60_000 });
    assert.equal(early.rowsRead, 0);
    assert.equal(early.version, null);
    const later = await learn(last);
    assert.equal(later.rowsRead, 30);
  });

  test('only the last three versions are kept', async () => {
    let ts = T0;
    for (let run = 0; run < 5; run++) {
      ts = await history(2, ts + 1000, `p${run}`);
      const r = await learn(ts);
      assert.equal(r.version, run + 1);
    }
    const versions = await store.all<{ version: number }>('SELECT DISTINCT version FROM routing_priors ORDER BY version');
    assert.deepEqual(versions.map((v) => v.version), [3, 4, 5]);
    assert.deepEqual((await readdir(path.join(dir, 'index'))).sort(), ['v3', 'v4', 'v5']);
    const blobs = await store.all<{ key: string }>("SELECT key FROM app_state WHERE key GLOB 'learned.v[0-9]*' ORDER BY key");
    assert.deepEqual(blobs.map((b) => b.key), ['learned.v3', 'learned.v4', 'learned.v5']);
  });
});

/** The built-in embedder, failing from the (n+1)th call on. */
function failingEmbedder(n: number): Embedder {
  let calls = 0;
  return {
    name: 'failing', dim: embedder.dim,
    async embed(texts) {
      if (++calls > n) throw new Error('embedder exploded');
      return embedder.embed(texts);
    },
  };
}

describe('learner failures', () => {
  test('a run that fails midway is marked failed and the previous version stays in force', async () => {
    const first = await history(10, T0);
    await learn(first);
    const before = await loadLearnedState(store, dir);
    const second = await history(300, first + 1000, 'h2');
    const failed = await learn(second, { embedder: failingEmbedder(2), pageSize: 100 });
    assert.equal(failed.status, 'failed');
    assert.match(failed.error!, /embedder exploded/);
    assert.equal(failed.version, 1);
    const recorded = await runs();
    assert.equal(recorded[1]!.status, 'failed');
    assert.match(recorded[1]!.error!, /embedder exploded/);
    assert.equal(await currentVersion(store), 1);
    assert.deepEqual(await loadLearnedState(store, dir), before);
    assert.ok(!existsSync(path.join(dir, 'index', 'v2')));
    // The failed run consumed nothing: the next run reads all the new rows.
    const retry = await learn(second);
    assert.equal(retry.status, 'ok');
    assert.equal(retry.rowsRead, 300 * 2 * MODELS.length);
    assert.equal(retry.version, 2);
  });

  test('a failure in the final swap leaves the previous version whole and the next run recovers', async () => {
    const first = await history(5, T0);
    await learn(first);
    const before = await loadLearnedState(store, dir);
    const second = await history(5, first + 1000, 'h2');
    let fail = true;
    const flaky = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === 'commitLearnedVersion') {
          return async (write: LearnedVersionWrite) => {
            if (fail) { fail = false; throw new Error('disk full'); }
            return target.commitLearnedVersion(write);
          };
        }
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const failed = await runLearner({ store: flaky, dataDir: dir, embedder, now: () => second + HOUR });
    assert.equal(failed.status, 'failed');
    assert.match(failed.error!, /disk full/);
    assert.deepEqual(await loadLearnedState(store, dir), before);
    const retry = await learn(second);
    assert.equal(retry.status, 'ok');
    assert.equal(retry.version, 2);
    assert.equal(retry.rowsRead, 30);
  });

  test('two concurrent runs: one is refused with a clear message, nothing is corrupted', async () => {
    const last = await history(10, T0);
    const results = await Promise.allSettled([learn(last), learn(last)]);
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(ok.length, 1);
    assert.equal(refused.length, 1);
    assert.ok(refused[0]!.reason instanceof LearnerBusyError);
    assert.match((refused[0]!.reason as Error).message, /another learner run is in progress \(pid \d+/);
    assert.equal(await currentVersion(store), 1);
    const state = await loadLearnedState(store, dir);
    assert.equal(state!.version, 1);
    assert.ok(await loadTextIndex(state!.indexDir!, embedder));
    assert.ok(!existsSync(path.join(dir, 'learner.lock')), 'the lock is released');
    const again = await learn(last);
    assert.equal(again.status, 'ok');
  });

  test('a lock left by a process that died is taken over', async () => {
    const last = await history(3, T0);
    await writeFile(path.join(dir, 'learner.lock'), JSON.stringify({ pid: 2 ** 22 + 12345, host: os.hostname(), startedAt: Date.now(), token: 'dead' }));
    const r = await learn(last);
    assert.equal(r.status, 'ok');
  });
});

describe('late ratings', () => {
  test('ratings given after a run to requests it already read move the next incremental run exactly as a full rebuild would', async () => {
    const last = await history(10, T0);
    const r1 = await learn(last);
    assert.equal(r1.status, 'ok', r1.error ?? '');
    // After the first run: users rate every answer of one model badly, and a few of another well.
    const rows = await store.all<{ id: string; final_model: string }>('SELECT id, final_model FROM queries ORDER BY ts, id');
    const rated = rows.filter((r) => r.final_model === 'coder');
    assert.ok(rated.length >= 10);
    const feedbackTs = last + HOUR + 30 * 60_000;
    for (const r of rated) store.recordFeedback({ requestId: r.id, ts: feedbackTs, rating: 1, comment: 'late', source: 'user' });
    for (const r of rows.filter((x) => x.final_model === 'writer').slice(0, 5)) store.recordFeedback({ requestId: r.id, ts: feedbackTs, rating: 5, comment: null, source: 'user' });
    await store.flush();

    const now = () => last + 2 * HOUR;
    const before = (await loadLearnedState(store, dir))!.priors;
    const r2 = await runLearner({ store, dataDir: dir, embedder, now });
    assert.equal(r2.status, 'ok', r2.error ?? '');
    assert.equal(r2.rowsRead, 0, 'no new requests');
    // Counted only where the rating changes what the row says (a 5 on an answer already counted as good may not).
    assert.ok(r2.lateRatings >= rated.length && r2.lateRatings <= rated.length + 5, `late ratings ${r2.lateRatings}`);
    assert.equal(r2.version, 2, 'late ratings alone make a new version');
    const incremental = (await loadLearnedState(store, dir))!.priors;
    const mean = (c: { alpha: number; beta: number }) => c.alpha / (c.alpha + c.beta);
    const coderAll = (ps: typeof before) => ps.find((c) => c.model === 'coder' && c.domain === '*' && c.language === '*')!;
    assert.ok(mean(coderAll(incremental)) < mean(coderAll(before)) - 0.05, `coder's prior fell (${mean(coderAll(before)).toFixed(3)} -> ${mean(coderAll(incremental)).toFixed(3)})`);

    const r3 = await runLearner({ store, dataDir: dir, embedder, now, full: true });
    assert.equal(r3.status, 'ok', r3.error ?? '');
    const full = (await loadLearnedState(store, dir))!.priors;
    const key = (c: { model: string; domain: string; language: string }) => `${c.model}/${c.domain}/${c.language}`;
    assert.deepEqual(incremental.map(key).sort(), full.map(key).sort());
    const byKey = new Map(full.map((c) => [key(c), c]));
    for (const c of incremental) {
      const f = byKey.get(key(c))!;
      assert.ok(Math.abs(c.alpha - f.alpha) < 1e-6 && Math.abs(c.beta - f.beta) < 1e-6, `${key(c)}: incremental ${c.alpha}/${c.beta} vs full ${f.alpha}/${f.beta}`);
    }

    // The next run has nothing late left to apply.
    const r4 = await runLearner({ store, dataDir: dir, embedder, now: () => last + 3 * HOUR });
    assert.equal(r4.lateRatings, 0);
  });
});
