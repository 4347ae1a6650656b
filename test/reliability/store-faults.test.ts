// The database misbehaving under a running gateway: the SQLite file locked by another connection
// past the busy timeout, and the disk full. Clients are still answered at full speed; queued
// writes are kept and land once the condition clears; nothing acknowledged is lost.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import sqlite3 from 'sqlite3';
import { startOpenAIStandIn } from '../standins/openai.ts';
import type { StandIn } from '../standins/common.ts';
import { startGateway, model, type TestGateway } from '../helpers/gateway.ts';
import { runConcurrent, sleep, timedPost } from '../helpers/load.ts';

/** The store's PRAGMA busy_timeout (server default): a lock held longer makes a batch fail. */
const STORE_BUSY_TIMEOUT_MS = 5000;
/** An answer must not wait for the database. */
const ANSWER_BOUND_MS = 2000;

function exec(db: sqlite3.Database, sql: string): Promise<void> {
  return new Promise((resolve, reject) => db.exec(sql, (err) => (err ? reject(err) : resolve())));
}

async function storedIds(gw: TestGateway): Promise<Set<string>> {
  const rows = await gw.services.store.all<{ id: string }>('select id from queries');
  return new Set(rows.map((r) => r.id));
}

describe('SQLite locked or full under a running gateway', () => {
  let up: StandIn;
  let gw: TestGateway;
  const send = (message: string) => timedPost(`${gw.url}/v1/chat/completions`, { model: 'alpha', messages: [{ role: 'user', content: message }] }, ANSWER_BOUND_MS);

  before(async () => {
    up = await startOpenAIStandIn();
    gw = await startGateway({ models: [model('alpha', 'openai', up.url)], env: { TEST_KEY: 'sk-test-reliability-key-0003', STORE_DURABILITY: 'batched' } });
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  test('while another connection holds an exclusive lock past the busy timeout, requests are answered and their writes land afterwards', async () => {
    const locker = new sqlite3.Database(gw.services.config.dbPath);
    await exec(locker, 'PRAGMA busy_timeout = 2000; BEGIN EXCLUSIVE');
    const acknowledged: string[] = [];
    const holdUntil = Date.now() + STORE_BUSY_TIMEOUT_MS + 700;
    let maxPending = 0;
    try {
      await runConcurrent(5, 5, async (worker) => {
        for (let i = 0; Date.now() < holdUntil; i++) {
          const r = await send(`locked database, worker ${worker}, request ${i}`);
          assert.equal(r.status, 200);
          acknowledged.push(r.id);
          maxPending = Math.max(maxPending, gw.services.store.pending());
          await sleep(50);
        }
      });
      assert.ok(acknowledged.length >= 50, `requests kept flowing while locked (${acknowledged.length})`);
      assert.ok(gw.services.store.pending() > 0, 'writes are queued while the file is locked');
      const [visible] = await gw.services.store.all<{ n: number }>('select count(*) as n from queries');
      assert.equal(visible!.n, 0, 'nothing could be committed during the lock');
    } finally {
      await exec(locker, 'COMMIT');
      await new Promise<void>((resolve) => locker.close(() => resolve()));
    }
    await gw.services.store.flush();
    assert.equal(gw.services.store.pending(), 0, 'the queue drains once the lock is gone');
    const ids = await storedIds(gw);
    assert.deepEqual(acknowledged.filter((id) => !ids.has(id)), [], 'every acknowledged request is stored');
    assert.ok(maxPending >= acknowledged.length / 2, `the queue held the writes (max ${maxPending})`);
  });

  test('when the disk is full (max_page_count reached), requests are answered and their writes land once there is room', async () => {
    const store = gw.services.store;
    await store.flush();
    const before = (await storedIds(gw)).size;
    const [{ page_count: pages } = { page_count: 0 }] = await store.all<{ page_count: number }>('PRAGMA page_count');
    // max_page_count is per connection; run() executes on the store's write connection.
    await store.run(`PRAGMA max_page_count = ${pages}`);
    const acknowledged: string[] = [];
    try {
      const results = await runConcurrent(40, 8, (i) => send(`disk full ${i}: ${'a long question that needs new pages '.repeat(100)}`));
      for (const r of results) {
        assert.equal(r.status, 200);
        acknowledged.push(r.id);
      }
      // Give the writer time for at least one failed attempt (flush timer is 10 ms in tests).
      const deadline = Date.now() + 2000;
      while (store.pending() === 0 && Date.now() < deadline) await sleep(20);
      await sleep(200);
      assert.ok(store.pending() > 0, 'writes are kept queued while the disk is full');
      const health = (await (await fetch(`${gw.url}/health`)).json()) as { status: string; store: { status: string; write_error: string | null } };
      assert.equal(health.status, 'degraded', 'acknowledged records are waiting in memory: /health says so');
      assert.equal(health.store.status, 'degraded');
      assert.match(health.store.write_error ?? '', /full/i);
      const [visible] = await store.all<{ n: number }>('select count(*) as n from queries');
      assert.ok(visible!.n < before + acknowledged.length, 'not everything fitted');
    } finally {
      await store.run('PRAGMA max_page_count = 1073741823');
    }
    await store.flush();
    assert.equal(store.pending(), 0);
    assert.equal(((await (await fetch(`${gw.url}/health`)).json()) as { status: string }).status, 'ok', 'healthy again once written');
    const ids = await storedIds(gw);
    assert.deepEqual(acknowledged.filter((id) => !ids.has(id)), [], 'every acknowledged request is stored');
    assert.equal(ids.size, before + acknowledged.length);
  });
});

describe('a database that cannot keep up: bounded queue, load shed with 503', () => {
  const MAX_PENDING = 20;
  let up: StandIn;
  let gw: TestGateway;

  before(async () => {
    up = await startOpenAIStandIn();
    gw = await startGateway({ models: [model('alpha', 'openai', up.url)], env: { TEST_KEY: 'sk-test-reliability-key-0009', STORE_MAX_PENDING: String(MAX_PENDING), STORE_DURABILITY: 'batched' } });
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  test(`past ${MAX_PENDING} queued records new chat requests get 503 store_backlog with Retry-After; answered ones are all stored; service resumes once the queue drains`, async () => {
    const locker = new sqlite3.Database(gw.services.config.dbPath);
    await exec(locker, 'PRAGMA busy_timeout = 2000; BEGIN EXCLUSIVE');
    const answered: string[] = [];
    let refused: { status: number; code: string; retryAfter: string | null; pending: number } | null = null;
    try {
      for (let i = 0; i < MAX_PENDING * 3 && !refused; i++) {
        const res = await fetch(`${gw.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'alpha', messages: [{ role: 'user', content: `backlog ${i}` }] }),
        });
        const body = (await res.json()) as { id?: string; error?: { code: string } };
        if (res.status === 200) answered.push(body.id!.replace(/^chatcmpl-/, ''));
        else refused = { status: res.status, code: body.error?.code ?? '', retryAfter: res.headers.get('retry-after'), pending: gw.services.store.pending() };
      }
      assert.ok(refused, 'a request was refused once the queue was full');
      assert.equal(refused.status, 503);
      assert.equal(refused.code, 'store_backlog');
      assert.equal(refused.retryAfter, '1');
      assert.ok(refused.pending >= MAX_PENDING, `refused only with a full queue (${refused.pending})`);
      assert.ok(answered.length >= MAX_PENDING - 1 && answered.length <= MAX_PENDING, `answered until the bound (${answered.length})`);
      // Other routes (health, the admin side) keep answering; /health says the backlog is past half the limit.
      const health = await fetch(`${gw.url}/health`);
      assert.equal(health.status, 200);
      assert.equal(((await health.json()) as { status: string }).status, 'degraded');
    } finally {
      await exec(locker, 'COMMIT');
      await new Promise<void>((resolve) => locker.close(() => resolve()));
    }
    await gw.services.store.flush();
    const ids = await storedIds(gw);
    assert.deepEqual(answered.filter((id) => !ids.has(id)), [], 'every answered request is stored');
    assert.equal(ids.size, answered.length, 'refused requests are not stored');
    const again = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'alpha', messages: [{ role: 'user', content: 'after the backlog' }] }) });
    assert.equal(again.status, 200);
  });
});
