// STORE_DURABILITY. 'commit' (default): an answer is acknowledged (its last byte, or the stream's
// [DONE] / message_stop) only once its row is committed, so kill -9 loses nothing acknowledged;
// 'batched' writes behind and a crash loses the window. A store that cannot write makes /health
// "degraded", and in commit mode answers are refused (503) rather than acknowledged unstored.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOpenAIStandIn } from '../standins/openai.ts';
import type { StandIn } from '../standins/common.ts';
import { startGateway, model, type TestGateway } from '../helpers/gateway.ts';
import { runConcurrent, requestId, spawnSwitchyard, sleep } from '../helpers/load.ts';
import { openSqliteStore } from '../../server/store/sqlite.ts';

/** Answered requests (status 200 and complete), by the client's correlation id. */
async function fire(url: string, n: number, tag: string): Promise<string[]> {
  const acknowledged: string[] = [];
  await runConcurrent(n, 12, async (i) => {
    const id = requestId(tag);
    const stream = i % 3 === 0;
    const anthropic = i % 5 === 0;
    try {
      const res = await fetch(`${url}${anthropic ? '/v1/messages' : '/v1/chat/completions'}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': id },
        body: JSON.stringify({ model: 'fast', stream, max_tokens: 50, messages: [{ role: 'user', content: `durable ${tag} ${i}` }] }),
      });
      const text = await res.text();
      const complete = !stream ? res.status === 200 : anthropic ? text.includes('message_stop') : text.includes('[DONE]');
      if (res.status === 200 && complete) acknowledged.push(id);
    } catch {
      // the process was killed under this request: never acknowledged
    }
  });
  return acknowledged;
}

describe('kill -9 under load', () => {
  let upstream: StandIn;
  before(async () => { upstream = await startOpenAIStandIn({ behaviour: { kind: 'ok', delayMs: 2 } }); });
  after(async () => { await upstream?.close(); });

  async function crashRun(durability: 'commit' | 'batched'): Promise<{ acknowledged: number; lost: number }> {
    // A long write-behind window makes what batched mode risks plain to see.
    const proc = await spawnSwitchyard({ models: [model('fast', 'openai', upstream.url)], env: { TEST_KEY: 'sk-test-durable-0001', STORE_DURABILITY: durability, WRITE_FLUSH_MS: '3000' } });
    try {
      const acknowledged = await fire(proc.url, 150, durability);
      proc.child.kill('SIGKILL');
      await proc.exited;
      const store = await openSqliteStore({ path: proc.dbPath });
      try {
        const rows = await store.all<{ c: string }>('select correlation_id as c from queries');
        const stored = new Set(rows.map((r) => r.c));
        return { acknowledged: acknowledged.length, lost: acknowledged.filter((id) => !stored.has(id)).length };
      } finally {
        await store.close();
      }
    } finally {
      await proc.cleanup();
    }
  }

  test('commit: every acknowledged request (plain, OpenAI stream, Anthropic stream) survives kill -9', async () => {
    const r = await crashRun('commit');
    assert.ok(r.acknowledged >= 140, `acknowledged ${r.acknowledged}`);
    assert.equal(r.lost, 0, `${r.lost} of ${r.acknowledged} acknowledged requests lost`);
  });

  test('batched: kill -9 loses the write-behind window (what the README warns of)', async () => {
    const r = await crashRun('batched');
    assert.ok(r.lost > 0, `batched mode lost ${r.lost} of ${r.acknowledged}`);
  });
});

describe('a store that cannot write, in commit mode', () => {
  let up: StandIn;
  let gw: TestGateway;
  before(async () => {
    up = await startOpenAIStandIn();
    gw = await startGateway({ models: [model('alpha', 'openai', up.url)], env: { TEST_KEY: 'sk-test-durable-0002', STORE_COMMIT_TIMEOUT_MS: '800' } });
  });
  after(async () => {
    await gw?.close();
    await up?.close();
  });

  test('a full disk: answers are refused with 503 instead of acknowledged unstored, /health is degraded, both recover', async () => {
    const store = gw.services.store;
    const ask = (content: string, stream = false) => fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'alpha', stream, messages: [{ role: 'user', content }] }) });
    assert.equal((await ask('before the disk fills')).status, 200);
    const [{ page_count: pages } = { page_count: 0 }] = await store.all<{ page_count: number }>('PRAGMA page_count');
    await store.run(`PRAGMA max_page_count = ${pages}`);
    try {
      const big = 'a long question that needs new pages '.repeat(200);
      // The first few may still fit in the file's free pages: those are stored, then acknowledged.
      let plain = await ask(`${big} 0`);
      for (let i = 1; i < 30 && plain.status === 200; i++) plain = await ask(`${big} ${i}`);
      assert.equal(plain.status, 503);
      const body = (await plain.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'store_unavailable');
      assert.match(body.error.message, /not acknowledged/);
      const streamed = await (await ask(big, true)).text();
      assert.doesNotMatch(streamed, /\[DONE\]/, 'a stream is not finished as if it were stored');
      assert.match(streamed, /could not be stored/);
      const health = (await (await fetch(`${gw.url}/health`)).json()) as { status: string; store: { status: string; write_error: string | null } };
      assert.equal(health.status, 'degraded');
      assert.equal(health.store.status, 'degraded');
      assert.match(health.store.write_error ?? '', /full/i);
      assert.doesNotMatch(JSON.stringify(health), /\/tmp\//, 'no file paths on /health');
    } finally {
      await store.run('PRAGMA max_page_count = 1073741823');
    }
    await store.flush();
    assert.equal(((await (await fetch(`${gw.url}/health`)).json()) as { status: string }).status, 'ok');
    const again = await ask('after there is room');
    assert.equal(again.status, 200);
    await sleep(0);
  });
});

describe('a store that cannot write, in batched mode', () => {
  let up: StandIn;
  let gw: TestGateway;
  before(async () => {
    up = await startOpenAIStandIn();
    gw = await startGateway({ models: [model('alpha', 'openai', up.url)], env: { TEST_KEY: 'sk-test-durable-0003', STORE_DURABILITY: 'batched' } });
  });
  after(async () => {
    await gw?.close();
    await up?.close();
  });

  test('a database that turned read-only: answers go on, /health is degraded while acknowledged records wait, then every one is stored', async () => {
    const store = gw.services.store;
    const ask = (content: string) => fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'alpha', messages: [{ role: 'user', content }] }) });
    // query_only makes every write on the store's write connection fail with SQLITE_READONLY.
    await store.run('PRAGMA query_only = 1');
    const ids: string[] = [];
    try {
      for (let i = 0; i < 5; i++) {
        const r = await ask(`while read-only ${i}`);
        assert.equal(r.status, 200);
        ids.push(((await r.json()) as { id: string }).id);
      }
      let health = { status: '', store: { status: '', write_error: null as string | null, pending_writes: 0 } };
      for (let i = 0; i < 100 && health.status !== 'degraded'; i++) {
        await sleep(20);
        health = (await (await fetch(`${gw.url}/health`)).json()) as typeof health;
      }
      assert.equal(health.status, 'degraded', 'acknowledged records wait in memory: /health says so');
      assert.equal(health.store.status, 'degraded');
      assert.match(health.store.write_error ?? '', /readonly/i);
      assert.ok(health.store.pending_writes >= 5, `pending ${health.store.pending_writes}`);
    } finally {
      await store.run('PRAGMA query_only = 0');
    }
    await store.flush();
    assert.equal(((await (await fetch(`${gw.url}/health`)).json()) as { status: string }).status, 'ok');
    for (const id of ids) assert.ok(await store.getRequest(id.replace(/^chatcmpl-/, '')), `${id} is stored`);
  });
});
