// The admin page on PostgreSQL: every page renders from the shared database, the console's request
// is stored there, a rating lands, "run learner now" runs under the advisory lock, and the
// database password appears nowhere.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AdminClient, startAdminEnv, type AdminTestEnv } from './harness.ts';
import { postgresUnavailable, startPostgres, type TestPostgres } from '../helpers/postgres.ts';

const skip = postgresUnavailable();
const PASSWORD = 'pg-pass-4c2e9a-NEVER-SHOW';
const PAGES = ['/', '/models', '/console', '/decisions', '/rate', '/performance', '/performance?range=30d', '/learning', '/logs', '/api/overview', '/api/logs', '/api/learning/status'];

describe('admin page on PostgreSQL', { skip: skip ? `skipped: ${skip}` : false }, () => {
  let server: TestPostgres;
  let env: AdminTestEnv;
  let client: AdminClient;

  before(async () => {
    server = await startPostgres();
    // Loopback trust authentication accepts any password: enough to check it never shows.
    const url = (await server.createDatabase()).replace('postgres@', `postgres:${PASSWORD}@`);
    env = await startAdminEnv({ env: { DATABASE_URL: url } });
    client = new AdminClient(env.url);
    await client.login();
  });
  after(async () => {
    await env?.close();
    await server?.stop();
  });

  test('pages render from the database; console, rating and learner run work; the password never shows', async () => {
    assert.equal(env.services.store.engine, 'postgres');
    await client.get('/console');
    const answered = await client.post('/console', { prompt: 'write a python function that reverses a list', model: 'auto', rules: '' });
    assert.equal(answered.status, 200);
    const id = /href="\/decisions\/(adm_[0-9a-f-]{36})"/.exec(answered.text)?.[1];
    assert.ok(id, 'the answer links its stored request');
    assert.equal((await env.services.store.getRequest(id!))?.endpoint, '/admin/test');
    env.services.logger.warn('database trouble', { detail: `could not reach postgres://postgres:${PASSWORD}@db/x` });
    for (const p of [...PAGES, `/decisions/${id}`]) {
      const r = await client.get(p);
      assert.equal(r.status, 200, p);
      assert.ok(!r.text.includes(PASSWORD), `${p} shows the database password`);
    }
    await client.get(`/decisions/${id}`);
    const rated = await client.post('/feedback', { request_id: id!, rating: '4', comment: '' });
    assert.ok(rated.status < 400, `rating: ${rated.status}`);
    assert.deepEqual((await env.services.store.getRequest(id!))?.feedback.map((f) => [f.source, f.rating]), [['admin', 4]]);
    await client.get('/learning');
    assert.equal((await client.post('/learning/run', {})).status, 303);
    await env.ctx.runner.idle();
    assert.equal(env.ctx.runner.status().outcome, 'ok', env.ctx.runner.status().error ?? '');
    const runs = await env.services.store.learnerRuns(5);
    assert.ok(runs[0] && runs[0].status === 'ok' && runs[0].rowsRead > 0);
    const health = await client.get('/api/overview');
    assert.ok(!health.text.includes(PASSWORD));
  });
});
