// PostgreSQL beyond the contract: the gateway and the learner on a real server shared by two
// instances (each with its own data directory, as on two machines), and the URL's password kept secret.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BuiltinEmbedder } from '../../router/embedder.ts';
import { loadTextIndex } from '../../router/knn.ts';
import { runLearner } from '../../learner/job.ts';
import { currentVersion, loadLearnedState } from '../../learner/state.ts';
import { ConfigError, loadConfig } from '../../server/config.ts';
import { openPostgresStore, redactUrl } from '../../server/store/postgres.ts';
import { migratePg, pgMigrations } from '../../server/store/postgres/migrations.ts';
import { postgresUnavailable, startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { startGateway } from '../helpers/gateway.ts';
import { recordHistory } from '../learner/synthetic-history.ts';
import pg from 'pg';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const skip = postgresUnavailable();
let server: TestPostgres | null = null;
const dirs: string[] = [];
const tmpDir = async (): Promise<string> => {
  const d = await mkdtemp(path.join(os.tmpdir(), 'switchyard-pgtest-'));
  dirs.push(d);
  return d;
};

before(async () => {
  if (!skip) server = await startPostgres();
});
after(async () => {
  await server?.stop();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('the DATABASE_URL secret', () => {
  test('a bad URL is refused without echoing it; a failed connection names the server, never the password', async () => {
    assert.throws(() => loadConfig({ DATABASE_URL: 'mysql://u:hunter2secret@h/db' }), (err: Error) => err instanceof ConfigError && !err.message.includes('hunter2secret') && /DATABASE_URL/.test(err.message));
    const config = loadConfig({ DATABASE_URL: 'postgres://u:hunter2secret@127.0.0.1:1/db' });
    assert.equal(config.store.databaseUrl, 'postgres://u:hunter2secret@127.0.0.1:1/db');
    assert.equal(redactUrl(config.store.databaseUrl!), 'postgres://u:***@127.0.0.1:1/db');
    await assert.rejects(openPostgresStore({ url: config.store.databaseUrl!, connectTimeoutMs: 2000 }), (err: Error) =>
      !err.message.includes('hunter2secret') && err.message.includes('127.0.0.1:1'));
  });
});

describe('the PostgreSQL schema', { skip: skip ? `skipped: ${skip}` : false }, () => {
  test('migrations run once however many instances start together; the views show decisions and attempts as SQLite does', async () => {
    const url = await server!.createDatabase();
    const stores = await Promise.all([1, 2, 3].map(() => openPostgresStore({ url, flushMs: 5 })));
    const features = { language: 'en', mixed: false, domain: 'code', complexity: 'simple', lengthBucket: 's', chars: 5, hasCode: false, depth: 1 } as const;
    stores[0]!.recordRequest({
      id: 'v1', ts: 1, endpoint: '/v1/chat/completions', queryText: 'hi', messageCount: 1, requestedModel: null, stream: false, features,
      finalModel: 'b', status: 'ok', httpStatus: 200, latencyMs: 9, answer: 'yo', inputTokens: 1, outputTokens: 2, costUsd: 0, error: null, demo: false,
    }, { method: 'knn', selected: 'a', candidates: [{ model: 'a', score: 1 }], confidence: 0.5, reasoning: 'r', features, timings: {} }, [
      { requestId: 'v1', ts: 1, model: 'a', attempt: 1, status: 'error', httpStatus: 500, latencyMs: 3, inputTokens: 0, outputTokens: 0, costUsd: 0, error: 'boom' },
      { requestId: 'v1', ts: 2, model: 'b', attempt: 1, status: 'ok', httpStatus: 200, latencyMs: 6, inputTokens: 1, outputTokens: 2, costUsd: 0, error: null },
    ]);
    await stores[0]!.flush();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      assert.deepEqual((await client.query('SELECT version FROM schema_migrations ORDER BY version')).rows.map((r: { version: number }) => r.version), pgMigrations.map((m) => m.version));
      assert.deepEqual((await client.query('SELECT model, status, error FROM model_calls ORDER BY attempt_index')).rows,
        [{ model: 'a', status: 'error', error: 'boom' }, { model: 'b', status: 'ok', error: null }]);
      assert.deepEqual((await client.query('SELECT method, selected_model, confidence FROM routing_decisions')).rows, [{ method: 'knn', selected_model: 'a', confidence: 0.5 }]);
    } finally {
      await client.end();
      await Promise.all(stores.map((st) => st.close()));
    }
  });
});

describe('rows stored before parts_json (PostgreSQL migration 2)', { skip: skip ? `skipped: ${skip}` : false }, () => {
  test('a database at migration 1 gains the column; its rows read parts null beside new rows with parts', async () => {
    const url = await server!.createDatabase();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      assert.deepEqual(await migratePg(client, pgMigrations.filter((m) => m.version === 1)), [1]);
      await client.query(`INSERT INTO queries (id, ts, endpoint, query_text, message_count, language, domain, complexity, features_json,
        final_model, status, http_status, latency_ms, answer) VALUES ('old-1', 5, '/v1/messages', 'old question', 1, 'en', 'chat', 'simple',
        '{"language":"en","mixed":false,"domain":"chat","complexity":"simple","lengthBucket":"s","chars":12,"hasCode":false,"depth":1}',
        'm', 'ok', 200, 10, 'old answer')`);
    } finally {
      await client.end();
    }
    const store = await openPostgresStore({ url, flushMs: 5 });
    try {
      const old = await store.getRequest('old-1');
      assert.equal(old?.answer, 'old answer');
      assert.equal(old?.parts, null);
      const features = { language: 'en', mixed: false, domain: 'chat', complexity: 'simple', lengthBucket: 's', chars: 2, hasCode: false, depth: 1 } as const;
      const parts = { v: 1 as const, messages: [{ role: 'user' as const, parts: [{ type: 'text' as const, text: 'hi', chars: 2 }] }], answer: { toolCalls: [], finishReason: 'stop' } };
      store.recordRequest({
        id: 'new-1', ts: 6, endpoint: '/v1/messages', queryText: 'hi', messageCount: 1, requestedModel: null, stream: false, features,
        finalModel: 'm', status: 'ok', httpStatus: 200, latencyMs: 9, answer: 'yo', inputTokens: 1, outputTokens: 2, costUsd: 0, error: null, demo: false, parts,
      }, null, []);
      await store.flush();
      assert.deepEqual((await store.getRequest('new-1'))?.parts, parts);
    } finally {
      await store.close();
    }
  });
});

describe('npm run learn on PostgreSQL', { skip: skip ? `skipped: ${skip}` : false }, () => {
  test('learns from the shared database, names it without the password, and waits its turn behind the advisory lock', async () => {
    // Loopback trust authentication accepts any password: enough to check it never shows.
    const url = (await server!.createDatabase()).replace('postgres@', 'postgres:s3cretpw@');
    const store = await openPostgresStore({ url, flushMs: 5 });
    const dataDir = await tmpDir();
    const learn = () => run(process.execPath, ['--import', 'tsx', 'learner/cli.ts', '--data-dir', dataDir], {
      cwd: root, env: { ...process.env, DATABASE_URL: url, SWITCHYARD_CONFIG: '', EMBEDDER: 'builtin' },
    });
    try {
      recordHistory({ store, models: ['coder', 'writer'], perDomain: 10, startTs: Date.now() - 86_400_000 });
      await store.flush();
      const held = await store.tryLearnerLock!();
      assert.ok(held);
      await assert.rejects(learn(), (e: Error & { code: number; stderr: string; stdout: string }) =>
        e.code === 3 && /another learner run is in progress; postgres advisory lock held by another instance/.test(e.stderr) && !`${e.stdout}${e.stderr}`.includes('s3cretpw'));
      await held.release();
      const { stdout, stderr } = await learn();
      assert.match(stdout, /learner run ok: 40 new rows/);
      assert.match(stdout, /postgres:\/\/postgres:\*\*\*@127\.0\.0\.1/);
      assert.ok(!`${stdout}${stderr}`.includes('s3cretpw'), 'the password never shows');
      assert.equal(await currentVersion(store), 1);
    } finally {
      await store.close();
    }
  });
});

describe('PostgreSQL going away', { skip: skip ? `skipped: ${skip}` : false }, () => {
  test('records wait while the server is down (the write error is reported) and are all written once it is back', async () => {
    const url = await server!.createDatabase();
    const store = await openPostgresStore({ url, flushMs: 5, retryBaseMs: 20, retryMaxMs: 200, connectTimeoutMs: 1000 });
    const features = { language: 'en', mixed: false, domain: 'code', complexity: 'simple', lengthBucket: 's', chars: 5, hasCode: false, depth: 1 } as const;
    const record = (id: string) => store.recordRequest({
      id, ts: 1, endpoint: '/v1/chat/completions', queryText: id, messageCount: 1, requestedModel: null, stream: false, features,
      finalModel: 'm', status: 'ok', httpStatus: 200, latencyMs: 1, answer: 'a', inputTokens: 1, outputTokens: 1, costUsd: 0, error: null, demo: false,
    }, null, []);
    try {
      record('before');
      await store.flush();
      await server!.restart(async () => {
        for (let i = 0; i < 50; i++) record(`down-${i}`);
        const deadline = Date.now() + 10_000;
        while (store.writeError() === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        assert.ok(store.writeError(), 'the failing writes are reported');
        assert.ok(store.pending() >= 50, 'and the records wait');
        assert.equal(await store.requestExists('down-7'), true, 'a queued request is still visible');
      });
      await store.flush();
      assert.equal(store.writeError(), null);
      assert.equal(await store.countRequests(), 51);
    } finally {
      await store.close();
    }
  });
});

describe('two instances on one PostgreSQL', { skip: skip ? `skipped: ${skip}` : false }, () => {
  test('a gateway stores every answered request (commit mode) and takes a rating for an answer another instance gave', async () => {
    const url = await server!.createDatabase();
    const env = { DATABASE_URL: url, STORE_DURABILITY: 'commit' };
    const [a, b] = [await startGateway({ env }), await startGateway({ env })];
    try {
      assert.equal(a.services.store.engine, 'postgres');
      const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => fetch(`${(i % 2 ? a : b).url}/v1/chat/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'auto', messages: [{ role: 'user', content: `hello ${i}` }] }),
      }).then(async (r) => ({ status: r.status, body: await r.json() as { id: string } }))));
      assert.deepEqual(answers.map((r) => r.status), Array(10).fill(200));
      // Acknowledged in commit mode: already committed, so the other instance reads every one.
      for (const { body } of answers) assert.equal(await b.services.store.requestExists(body.id.replace(/^chatcmpl-/, '')), true);
      assert.equal(await a.services.store.countRequests(), 10);
      const fromA = answers[1]!.body.id;
      const rated = await fetch(`${b.url}/api/feedback`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ request_id: fromA, rating: 5 }),
      });
      assert.equal(rated.status, 201, await rated.text());
      await b.services.store.flush();
      assert.deepEqual((await a.services.store.getRequest(fromA.replace(/^chatcmpl-/, '')))?.feedback.map((f) => f.rating), [5]);
      const health = await (await fetch(`${a.url}/health`)).json() as { store: { status: string } };
      assert.equal(health.store.status, 'ok');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('one learner run at a time across instances, and each instance loads the same version with its kNN index', async () => {
    const url = await server!.createDatabase();
    const [dirA, dirB] = [await tmpDir(), await tmpDir()];
    const [a, b] = [await openPostgresStore({ url, flushMs: 5 }), await openPostgresStore({ url, flushMs: 5 })];
    const embedder = new BuiltinEmbedder(64);
    try {
      const last = recordHistory({ store: a, models: ['coder', 'writer'], perDomain: 10, startTs: 1_700_000_000_000 });
      await a.flush();
      const now = () => last + 3_600_000;
      const runs = await Promise.allSettled([runLearner({ store: a, dataDir: dirA, embedder, now }), runLearner({ store: b, dataDir: dirB, embedder, now })]);
      const done = runs.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const refused = runs.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
      assert.equal(done.length, 1, 'exactly one run went ahead');
      assert.equal(done[0]!.status, 'ok', done[0]!.error ?? '');
      assert.equal(refused.length, 1);
      assert.match(refused[0]!.message, /another learner run is in progress/);
      assert.equal(await currentVersion(b), 1);
      // Whichever instance did not run has no index directory of its own: it comes from the database.
      const [stateA, stateB] = [await loadLearnedState(a, dirA), await loadLearnedState(b, dirB)];
      assert.equal(stateA?.version, 1);
      assert.equal(stateB?.version, 1);
      assert.deepEqual(stateB?.priors, stateA?.priors);
      assert.ok(stateA?.indexDir && stateB?.indexDir && existsSync(stateA.indexDir) && existsSync(stateB.indexDir));
      const [indexA, indexB] = [await loadTextIndex(stateA.indexDir, embedder), await loadTextIndex(stateB.indexDir, embedder)];
      assert.equal(indexB?.size, indexA?.size);
      assert.ok((indexB?.size ?? 0) > 0);
      // A second run (from the other instance) writes version 2 and keeps it in the database for both.
      const again = await runLearner({ store: b, dataDir: dirB, embedder, now, full: true });
      assert.equal(again.version, 2);
      assert.equal((await loadLearnedState(a, dirA))?.version, 2);
      assert.ok(existsSync(path.join(dirA, 'index', 'v2')), 'instance A fetched version 2 of the index');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
