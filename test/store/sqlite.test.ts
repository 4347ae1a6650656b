// The SQLite store's write path: migrations, the batched writer, durability under lock and close.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { QueryFeatures, RoutingDecision } from '../../router/types.ts';
import { rowJson as jsonForSqlite } from '../../server/store/records.ts';
import { Db } from '../../server/store/sqlite/db.ts';
import { migrate, migrations } from '../../server/store/sqlite/migrations.ts';
import { openSqliteStore, type SqliteStoreOptions } from '../../server/store/sqlite.ts';
import type { LogLevel } from '../../core/log.ts';
import type { ModelCallRecord, RequestFilter, RequestRecord } from '../../server/store/types.ts';
import { listRequestsSql } from '../../server/store/sql/queries.ts';

const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tmpDbPath(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'switchyard-store-'));
  dirs.push(dir);
  return path.join(dir, 'nested', 'switchyard.db');
}

interface LogEntry { level: LogLevel; msg: string; fields?: Record<string, unknown> }

/** A store on a fresh temp file, with its log captured and a way to await a log line. */
async function tmpStore(opts: Partial<SqliteStoreOptions> = {}) {
  const logs: LogEntry[] = [];
  const listeners: { match: (e: LogEntry) => boolean; resolve: (e: LogEntry) => void }[] = [];
  const file = opts.path ?? (await tmpDbPath());
  const store = await openSqliteStore({
    ...opts,
    path: file,
    logger: (level, msg, fields) => {
      const entry = { level, msg, fields };
      logs.push(entry);
      for (const l of listeners.splice(0)) {
        if (l.match(entry)) l.resolve(entry);
        else listeners.push(l);
      }
    },
  });
  const nextLog = (match: (e: LogEntry) => boolean) =>
    new Promise<LogEntry>((resolve) => listeners.push({ match, resolve }));
  return { store, file, logs, nextLog };
}

const features = (over: Partial<QueryFeatures> = {}): QueryFeatures => ({
  language: 'en', mixed: false, domain: 'code', complexity: 'medium', lengthBucket: 's', chars: 40,
  hasCode: false, depth: 1, ...over,
});

const request = (id: string, over: Partial<RequestRecord> = {}): RequestRecord => ({
  id, ts: 1_000, endpoint: '/v1/chat/completions', queryText: `question ${id}`, messageCount: 1,
  requestedModel: null, stream: false, features: features(), finalModel: 'model-a', status: 'ok',
  httpStatus: 200, latencyMs: 100, answer: 'an answer', inputTokens: 10, outputTokens: 20, costUsd: 0.001,
  error: null, demo: false, ...over,
});

const call = (requestId: string, over: Partial<ModelCallRecord> = {}): ModelCallRecord => ({
  requestId, ts: 1_000, model: 'model-a', attempt: 1, status: 'ok', httpStatus: 200, latencyMs: 100,
  inputTokens: 10, outputTokens: 20, costUsd: 0.001, error: null, ...over,
});

const decision = (selected: string): RoutingDecision => ({
  method: 'keywords', selected, candidates: [{ model: selected, score: 0.9 }], confidence: 0.8,
  reasoning: 'keyword match', features: features(), timings: { features: 0.2 },
});

describe('migrations', () => {
  test('opening the same database twice applies each migration exactly once', async () => {
    const { store, file } = await tmpStore();
    await store.close();
    const { store: again } = await tmpStore({ path: file });
    const rows = await again.all<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
    assert.deepEqual(rows.map((r) => r.version), migrations.map((m) => m.version));
    const mode = await again.all<{ journal_mode: string }>('PRAGMA journal_mode');
    assert.equal(mode[0]?.journal_mode, 'wal');
    await again.close();

    const db = await Db.open(file);
    assert.deepEqual(await migrate(db), []);
    await db.close();
  });

  test('a version 2 database keeps its decisions and attempts when they move into the request row (version 3)', async () => {
    const file = await tmpDbPath();
    await mkdir(path.dirname(file), { recursive: true });
    const db = await Db.open(file);
    await migrate(db, migrations.filter((m) => m.version <= 2));
    const f = JSON.stringify(features());
    const insertQuery = `INSERT INTO queries (id, ts, endpoint, query_text, message_count, stream, language, domain,
      complexity, features_json, final_model, status, http_status, latency_ms, answer)
      VALUES (?, ?, '/api/chat', ?, 1, 0, 'en', 'code', 'medium', ?, 'model-a', 'ok', 200, 120, 'old answer')`;
    await db.run(insertQuery, ['old-1', 5_000, 'first old question', f]);
    await db.run(insertQuery, ['old-2', 6_000, 'second old question, no decision, no calls', f]);
    await db.run(`INSERT INTO routing_decisions (request_id, ts, method, selected_model, confidence, reasoning,
      candidates_json, features_json, timings_json, judge_json) VALUES ('old-1', 5000, 'judge', 'model-a', 0.7, 'the judge chose',
      '[{"model":"model-a","score":0.9},{"model":"model-b","score":0.4}]', ?, '{"judge":12.5}',
      '{"selectedModel":"model-a","confidence":70,"reasoning":"better at code"}')`, [f]);
    // Stored out of attempt and time order: the attempts keep the order they were stored in (by id),
    // which is the order the old tables were read in.
    await db.run(`INSERT INTO model_calls (request_id, ts, model, attempt, status, http_status, latency_ms, error)
      VALUES ('old-1', 5040, 'model-a', 2, 'ok', 200, 80, NULL), ('old-1', 5000, 'model-b', 1, 'error', 503, 40, 'upstream 503')`);
    await db.close();

    const { store } = await tmpStore({ path: file });
    const old1 = await store.getRequest('old-1');
    assert.deepEqual(old1?.decision, {
      method: 'judge', selected: 'model-a', confidence: 0.7, reasoning: 'the judge chose', features: features(),
      candidates: [{ model: 'model-a', score: 0.9 }, { model: 'model-b', score: 0.4 }], timings: { judge: 12.5 },
      judge: { selectedModel: 'model-a', confidence: 70, reasoning: 'better at code' },
    });
    assert.deepEqual(old1?.calls, [
      { requestId: 'old-1', ts: 5040, model: 'model-a', attempt: 2, status: 'ok', httpStatus: 200, latencyMs: 80, inputTokens: 0, outputTokens: 0, costUsd: 0, error: null },
      { requestId: 'old-1', ts: 5000, model: 'model-b', attempt: 1, status: 'error', httpStatus: 503, latencyMs: 40, inputTokens: 0, outputTokens: 0, costUsd: 0, error: 'upstream 503' },
    ]);
    const old2 = await store.getRequest('old-2');
    assert.equal(old2?.decision, null);
    assert.deepEqual(old2?.calls, []);
    assert.deepEqual((await store.listRequests({ method: 'judge' })).map((r) => r.id), ['old-1']);

    // New requests land in the same shape, and the old table names still answer as views.
    store.recordRequest(request('new-1', { ts: 7_000 }), decision('model-a'), [call('new-1', { model: 'model-b', status: 'timeout', httpStatus: null, error: 'slow' }), call('new-1', { attempt: 2 })]);
    await store.flush();
    const decisions = await store.all<{ request_id: string; method: string; selected_model: string; confidence: number; judge_json: string | null }>(
      'SELECT request_id, method, selected_model, confidence, judge_json FROM routing_decisions ORDER BY ts');
    assert.deepEqual(decisions.map((d) => ({ ...d })), [
      { request_id: 'old-1', method: 'judge', selected_model: 'model-a', confidence: 0.7, judge_json: '{"selectedModel":"model-a","confidence":70,"reasoning":"better at code"}' },
      { request_id: 'new-1', method: 'keywords', selected_model: 'model-a', confidence: 0.8, judge_json: null },
    ]);
    const calls = await store.all<{ request_id: string; model: string; attempt: number; status: string; http_status: number | null; latency_ms: number }>(
      'SELECT request_id, model, attempt, status, http_status, latency_ms FROM model_calls ORDER BY id');
    assert.deepEqual(calls.map((c) => ({ ...c })), [
      { request_id: 'old-1', model: 'model-a', attempt: 2, status: 'ok', http_status: 200, latency_ms: 80 },
      { request_id: 'old-1', model: 'model-b', attempt: 1, status: 'error', http_status: 503, latency_ms: 40 },
      { request_id: 'new-1', model: 'model-b', attempt: 1, status: 'timeout', http_status: null, latency_ms: 100 },
      { request_id: 'new-1', model: 'model-a', attempt: 2, status: 'ok', http_status: 200, latency_ms: 100 },
    ]);
    // The old per-filter indexes are gone; one covering time index is left besides the key.
    const indexes = await store.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'queries' AND sql IS NOT NULL ORDER BY name");
    assert.deepEqual(indexes.map((i) => i.name), ['idx_queries_ts_cover']);
    await store.close();
  });
});

describe('in-memory database', () => {
  test('":memory:" gives a private, working store on one connection', async () => {
    const store = await openSqliteStore({ path: ':memory:' });
    store.recordRequest(request('mem-1'), decision('model-a'), [call('mem-1')]);
    store.recordFeedback({ requestId: 'mem-1', ts: 2_000, rating: 5, comment: null, source: 'user' });
    await store.flush();
    assert.equal(await store.countRequests(), 1);
    assert.equal((await store.performance())[0]?.ratingSum, 5);
    await store.close();
  });
});

describe('batched writer', () => {
  test('1000 requests recorded without awaiting are all written by flush(), with matching performance totals', async () => {
    const { store } = await tmpStore();
    let callCount = 0;
    let successes = 0;
    for (let i = 0; i < 1000; i++) {
      const id = `r${i}`;
      const domain = i % 2 === 0 ? 'code' : 'math';
      // Every tenth request fails on model-b first, then falls back to model-a.
      const calls = i % 10 === 0
        ? [call(id, { model: 'model-b', status: 'error', httpStatus: 500, latencyMs: 50 }), call(id, { attempt: 2 })]
        : [call(id)];
      callCount += calls.length;
      successes += calls.filter((c) => c.status === 'ok').length;
      store.recordRequest(request(id, { ts: 1_000 + i, features: features({ domain }) }), decision('model-a'), calls);
    }
    assert.equal(store.pending(), 1000, 'recording does not write on the caller path');
    await store.flush();
    assert.equal(store.pending(), 0);
    assert.equal(await store.countRequests(), 1000);
    const perf = await store.performance();
    assert.equal(perf.reduce((n, r) => n + r.total, 0), callCount);
    assert.equal(perf.reduce((n, r) => n + r.successes, 0), successes);
    const bCode = perf.find((r) => r.model === 'model-b' && r.domain === 'code');
    assert.deepEqual(
      { total: bCode?.total, successes: bCode?.successes, avgLatencyMs: bCode?.avgLatencyMs },
      { total: 100, successes: 0, avgLatencyMs: 50 },
    );
    const [{ n } = { n: 0 }] = await store.all<{ n: number }>('SELECT COUNT(*) AS n FROM model_calls');
    assert.equal(n, callCount);
    await store.close();
  });

  test('records enqueued while a batch is being written go into the next batch', async () => {
    const { store, logs } = await tmpStore({ flushMs: 60_000, maxBatch: 1000 });
    const batches = () => logs.filter((l) => l.msg === 'store batch written').map((l) => l.fields?.records);
    for (let i = 0; i < 10; i++) store.recordRequest(request(`a${i}`), null, []);
    const first = store.flush();
    for (let i = 0; i < 5; i++) store.recordRequest(request(`b${i}`), null, []);
    assert.equal(store.pending(), 15);
    await first;
    assert.deepEqual(batches(), [10]);
    await store.flush();
    assert.deepEqual(batches(), [10, 5]);
    assert.equal(await store.countRequests(), 15);
    await store.close();
  });

  test('a batch larger than one statement takes (long answers) is written whole, in order, first id wins', async () => {
    const { store, logs } = await tmpStore({ flushMs: 60_000, maxBatch: 1000 });
    const answer = (i: number) => `answer ${i} `.repeat(4_000); // 40-48k characters each (answers are kept up to 50k), ~5 MB in all
    for (let i = 0; i < 120; i++) store.recordRequest(request(`big-${i}`, { ts: 10_000 + i, answer: answer(i) }), decision('model-a'), [call(`big-${i}`)]);
    store.recordRequest(request('big-7', { ts: 20_000, answer: 'a later duplicate' }), null, []);
    await store.flush();
    assert.deepEqual(logs.filter((l) => l.msg === 'store batch written').map((l) => l.fields?.records), [121], 'one batch');
    const rows = await store.all<{ id: string; n: number; head: string }>("SELECT id, length(answer) AS n, substr(answer, 1, 12) AS head FROM queries ORDER BY ts");
    assert.equal(rows.length, 120);
    rows.forEach((r, i) => {
      assert.equal(r.id, `big-${i}`);
      assert.equal(r.n, answer(i).length);
    });
    assert.equal(rows[7]!.head, 'answer 7 ans', 'the first record with an id wins');
    assert.equal((await store.all<{ n: number }>('SELECT count(*) AS n FROM routing_decisions'))[0]!.n, 120);
    await store.close();
  });

  test('the timer writes a batch without anyone calling flush()', async () => {
    const { store, nextLog } = await tmpStore({ flushMs: 5 });
    const written = nextLog((e) => e.msg === 'store batch written');
    store.recordRequest(request('timed'), null, []);
    assert.equal((await written).fields?.records, 1);
    assert.equal(store.pending(), 0);
    assert.equal(await store.countRequests(), 1);
    await store.close();
  });

  test('requestExists and getRequest see a request that is queued but not yet written', async () => {
    const { store } = await tmpStore({ flushMs: 60_000 });
    const judged = { ...decision('model-a'), judge: { selectedModel: 'model-a', confidence: 80, reasoning: 'fits' } };
    store.recordRequest(request('queued-1', { clientKeyHash: 'abc', latencyMs: 100.4, stream: true }), judged,
      [call('queued-1', { model: 'model-b', status: 'error', httpStatus: 502, error: 'bad gateway' }), call('queued-1', { attempt: 2 })]);
    assert.equal(await store.requestExists('queued-1'), true);
    assert.equal(await store.requestExists('never-seen'), false);
    store.recordFeedback({ requestId: 'queued-1', ts: 2_000, rating: 4, comment: null, source: 'user' });
    const queued = await store.getRequest('queued-1');
    assert.equal(queued?.decision?.selected, 'model-a');
    assert.deepEqual(queued?.feedback.map((f) => f.rating), [4]);
    assert.equal(await store.countRequests(), 0);

    await store.flush();
    assert.equal(await store.requestExists('queued-1'), true);
    const stored = await store.getRequest('queued-1');
    assert.equal(stored?.calls.length, 2);
    assert.deepEqual(stored?.feedback.map((f) => f.rating), [4]);
    // Read back while queued or once written: the same request, field for field.
    assert.deepEqual(queued, stored);
    assert.equal(stored?.latencyMs, 100);
    assert.equal(stored?.decision?.judge?.reasoning, 'fits');
    await store.close();
  });

  test('feedback ratings outside 1..5 are refused, by recordFeedback and by the schema', async () => {
    const { store } = await tmpStore();
    for (const rating of [0, 6, 2.5, Number.NaN]) {
      assert.throws(
        () => store.recordFeedback({ requestId: 'x', ts: 1, rating, comment: null, source: 'user' }),
        RangeError,
      );
    }
    assert.throws(() => store.recordFeedback({ requestId: 'x', ts: 1, rating: 5.5, comment: null, source: 'eval' }), RangeError);
    assert.equal(store.pending(), 0);
    store.recordFeedback({ requestId: 'x', ts: 1, rating: 3.75, comment: null, source: 'eval' });
    await store.flush();
    assert.deepEqual(await store.all('SELECT rating FROM user_feedback'), [{ rating: 3.75 }], 'eval scores may be continuous');
    await assert.rejects(
      store.run("INSERT INTO user_feedback (request_id, ts, rating, source) VALUES ('x', 1, 7, 'user')"),
      /CHECK constraint failed/,
    );
    await store.close();
  });

  test('feedback adds to rating_sum and rating_count of the model that answered, per domain and language', async () => {
    const { store } = await tmpStore();
    store.recordRequest(request('p1', { features: features({ domain: 'math', language: 'zh' }) }), null, [call('p1', { latencyMs: 300 })]);
    store.recordRequest(request('p2', { features: features({ domain: 'math', language: 'zh' }) }), null, [call('p2', { latencyMs: 100 })]);
    store.recordRequest(request('p3', { finalModel: null, status: 'error', httpStatus: 502 }), null, []);
    store.recordFeedback({ requestId: 'p1', ts: 2_000, rating: 5, comment: 'great', source: 'user' });
    await store.flush();
    store.recordFeedback({ requestId: 'p2', ts: 2_001, rating: 2, comment: null, source: 'implicit' });
    store.recordFeedback({ requestId: 'p3', ts: 2_002, rating: 1, comment: null, source: 'user' });
    await store.flush();
    const perf = await store.performance();
    assert.equal(perf.length, 1, 'a request without a final model adds no performance row');
    assert.deepEqual(perf[0], {
      model: 'model-a', domain: 'math', language: 'zh', successes: 2, total: 2, avgLatencyMs: 200,
      ratingSum: 7, ratingCount: 2, costUsd: 0.002,
    });
    await store.close();
  });

  test('a record SQLite refuses is dropped alone and the rest of its batch is written', async () => {
    const { store, logs } = await tmpStore({ flushMs: 60_000 });
    store.recordRequest(request('good-1'), null, []);
    store.recordRequest(request('bad', { status: 'maybe' as 'ok' }), null, []);
    store.recordRequest(request('good-2'), null, []);
    await store.flush();
    assert.equal(store.pending(), 0);
    assert.deepEqual((await store.listRequests({})).map((r) => r.id).sort(), ['good-1', 'good-2']);
    const dropped = logs.find((l) => l.msg === 'store dropped a record the database refused');
    assert.equal(dropped?.fields?.requestId, 'bad');
    assert.equal(dropped?.fields?.code, 'SQLITE_CONSTRAINT');
    await store.close();
  });

  test('a duplicate request id is ignored without adding to performance twice', async () => {
    const { store, logs } = await tmpStore();
    store.recordRequest(request('dup'), null, [call('dup')]);
    store.recordRequest(request('dup'), null, [call('dup')]);
    await store.flush();
    assert.equal(await store.countRequests(), 1);
    assert.equal((await store.performance())[0]?.total, 1);
    assert.ok(logs.some((l) => l.level === 'warn' && l.fields?.requestId === 'dup'));
    await store.close();
  });

  test('a batch that fails while another connection holds the write lock stays queued and is written after', async () => {
    const { store, file, nextLog } = await tmpStore({ busyTimeoutMs: 20, retryBaseMs: 5, retryMaxMs: 40 });
    const locker = await Db.open(file);
    await locker.run('BEGIN EXCLUSIVE');
    const failed = nextLog((e) => e.msg.startsWith('store batch failed'));
    for (let i = 0; i < 3; i++) store.recordRequest(request(`locked-${i}`), null, [call(`locked-${i}`)]);
    const flushed = store.flush();
    const failure = await failed;
    assert.equal(failure.level, 'error');
    assert.equal(failure.fields?.code, 'SQLITE_BUSY');
    assert.equal(store.pending(), 3);
    assert.equal(await store.requestExists('locked-1'), true);
    assert.equal(await store.countRequests(), 0);

    await locker.run('COMMIT');
    await flushed;
    assert.equal(store.pending(), 0);
    assert.equal(await store.countRequests(), 3);
    assert.equal((await store.performance())[0]?.total, 3);
    await locker.close();
    await store.close();
  });

  test('a batch that fails because the database is full (SQLITE_FULL) is kept and written once there is room', async () => {
    const { store, nextLog } = await tmpStore({ retryBaseMs: 5, retryMaxMs: 20 });
    const [{ page_count: pages } = { page_count: 0 }] = await store.all<{ page_count: number }>('PRAGMA page_count');
    // max_page_count is per connection; run() executes on the write connection.
    await store.run(`PRAGMA max_page_count = ${pages}`);
    const failed = nextLog((e) => e.msg.startsWith('store batch failed'));
    for (let i = 0; i < 4; i++) store.recordRequest(request(`full-${i}`, { answer: 'x'.repeat(40_000) }), null, []);
    const flushed = store.flush();
    assert.equal((await failed).fields?.code, 'SQLITE_FULL');
    assert.equal(store.pending(), 4);

    await store.run('PRAGMA max_page_count = 1073741823');
    await flushed;
    assert.equal(await store.countRequests(), 4);
    await store.close();
  });

  test('close() writes what is queued, and later records are dropped with a log line', async () => {
    const { store, file, logs } = await tmpStore({ flushMs: 60_000 });
    for (let i = 0; i < 5; i++) store.recordRequest(request(`c${i}`), null, []);
    store.recordFeedback({ requestId: 'c1', ts: 2_000, rating: 3, comment: null, source: 'user' });
    await store.close();
    store.recordRequest(request('late'), null, []);
    assert.ok(logs.some((l) => l.msg === 'store is closed; record dropped'));

    const { store: reopened } = await tmpStore({ path: file });
    assert.equal(await reopened.countRequests(), 5);
    assert.deepEqual((await reopened.getRequest('c1'))?.feedback.map((f) => f.rating), [3]);
    assert.equal(await reopened.requestExists('late'), false);
    await reopened.close();
  });

  test('close() gives up after closeTimeoutMs when the database stays locked, and says how much was lost', async () => {
    const { store, file } = await tmpStore({ busyTimeoutMs: 10, retryBaseMs: 5, retryMaxMs: 10, closeTimeoutMs: 100 });
    const locker = await Db.open(file);
    await locker.run('BEGIN EXCLUSIVE');
    store.recordRequest(request('lost'), null, []);
    await assert.rejects(store.close(), /1 records not written/);
    await locker.run('ROLLBACK');
    await locker.close();
  });
});

describe('text round-trip through the JSON batch insert', () => {
  // Backslash-u-0000 as six plain characters, then a real NUL character.
  const LITERAL_ESCAPE = '\\u0000';
  const NUL = '\u0000';
  const tricky = (label: string) =>
    `${label}: emoji 🚦👩‍💻, CJK 交通信号灯は赤, "double" and 'single' quotes, a backslash \\ and C:\\path\\n,` +
    ` a newline\nand a tab\t, literal ${LITERAL_ESCAPE} and \\${LITERAL_ESCAPE}, a NUL [${NUL}] and one after a backslash \\${NUL} end`;
  const stored = (text: string) => text.replaceAll(NUL, '\uFFFD');

  test('jsonForSqlite: plain values are JSON.stringify unchanged; real NULs become U+FFFD, escaped-looking text is kept', () => {
    const plain = [['a', 1, null, true, 'x\\u0000y', 'q"\\', '🚦 交通', 1.5]];
    assert.equal(jsonForSqlite(plain), JSON.stringify(plain));
    assert.equal(jsonForSqlite('a\u0000b'), '"a\\ufffdb"');
    assert.equal(jsonForSqlite(`${LITERAL_ESCAPE}`), JSON.stringify(LITERAL_ESCAPE), 'six characters, not a NUL');
    assert.equal(jsonForSqlite(`\\${NUL}`), '"\\\\\\ufffd"', 'a backslash then a NUL');
    assert.equal(jsonForSqlite(`\\\\${LITERAL_ESCAPE}`), JSON.stringify(`\\\\${LITERAL_ESCAPE}`), 'escaped backslashes before the literal text');
    const value = [[tricky('q'), 7, null], [NUL.repeat(3), `${NUL}${LITERAL_ESCAPE}${NUL}`]];
    const out = jsonForSqlite(value);
    assert.deepEqual(JSON.parse(out), [[stored(tricky('q')), 7, null], ['\uFFFD'.repeat(3), `\uFFFD${LITERAL_ESCAPE}\uFFFD`]]);
  });

  test('query text, answer, error, reasoning and comment keep emoji, CJK, quotes, backslashes, newlines and a literal \\u0000; a real NUL is stored as U+FFFD', async () => {
    const { store } = await tmpStore({ flushMs: 60_000 });
    const req = request('tricky-1', { queryText: tricky('query'), answer: tricky('answer'), error: tricky('error') });
    store.recordRequest(req, { ...decision('model-a'), reasoning: tricky('reasoning') }, [call('tricky-1', { status: 'error', httpStatus: 500, error: tricky('call error') })]);
    store.recordFeedback({ requestId: 'tricky-1', ts: 2_000, rating: 4, comment: tricky('comment'), source: 'user' });
    // Numeric-looking text stays text (json_each's ->> must not turn it into a number).
    store.recordRequest(request('tricky-2', { queryText: '007', answer: '1e3' }), null, []);
    await store.flush();
    assert.equal(store.pending(), 0);

    const got = await store.getRequest('tricky-1');
    assert.ok(got, 'the request was written');
    assert.equal(got.queryText, stored(tricky('query')));
    assert.equal(got.answer, stored(tricky('answer')));
    assert.equal(got.error, stored(tricky('error')));
    assert.equal(got.decision?.reasoning, stored(tricky('reasoning')));
    assert.equal(got.calls[0]?.error, stored(tricky('call error')));
    assert.equal(got.feedback[0]?.comment, stored(tricky('comment')));
    // The text after each NUL survived, and the six literal characters are still six characters.
    assert.ok(got.queryText.endsWith('\\\uFFFD end'));
    assert.ok(got.queryText.includes(`literal ${LITERAL_ESCAPE} and \\${LITERAL_ESCAPE}`));
    assert.ok(!got.queryText.includes(NUL));

    // The same straight from SQL: stored as TEXT, with the exact length.
    const [row] = await store.all<{ q: string; qt: string; ql: number; a: string }>(
      "SELECT query_text AS q, typeof(query_text) AS qt, length(query_text) AS ql, answer AS a FROM queries WHERE id = 'tricky-1'",
    );
    assert.equal(row?.qt, 'text');
    assert.equal(row?.q, stored(tricky('query')));
    assert.equal(row?.ql, [...stored(tricky('query'))].length, 'SQLite length() counts code points');
    assert.equal(row?.a, stored(tricky('answer')));

    const numeric = await store.all<{ q: unknown; qt: string; a: unknown; at: string }>(
      "SELECT query_text AS q, typeof(query_text) AS qt, answer AS a, typeof(answer) AS at FROM queries WHERE id = 'tricky-2'",
    );
    assert.deepEqual(numeric, [{ q: '007', qt: 'text', a: '1e3', at: 'text' }]);
    await store.close();
  });
});

describe('query plans', () => {
  // The index holds every filtered column, so SQLite tests a row's filters from the index entry and
  // reads the table row only for the page's matches (a deferred seek).
  test('every filtered page walks the time index in order: no table scan, no sort', async () => {
    const { store } = await tmpStore();
    const filters: RequestFilter[] = [
      {}, { model: 'm' }, { domain: 'code' }, { language: 'en' }, { method: 'knn' }, { status: 'error' },
      { model: 'm', domain: 'code', language: 'en', method: 'knn', status: 'ok' }, { domain: 'code', beforeTs: 5, beforeId: 'x' },
    ];
    for (const filter of filters) {
      const { sql, params } = listRequestsSql(filter);
      const plan = (await store.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, params)).map((r) => r.detail).join(' | ');
      assert.match(plan, /^(SCAN|SEARCH) q USING (COVERING )?INDEX idx_queries_ts_cover\b/, `${JSON.stringify(filter)}: ${plan}`);
      assert.doesNotMatch(plan, /TEMP B-TREE/, `${JSON.stringify(filter)}: ${plan}`);
    }
    await store.close();
  });
});
