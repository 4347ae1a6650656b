// Request ids are minted by the gateway (a client's x-request-id is a stored, echoed correlation
// id); ratings come only from whoever made the request (same key, or without keys the same
// address) or an admin credential; one rating per request and source, a new one replacing the old.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import OpenAI from 'openai';
import { startGateway, postJson, type TestGateway } from '../helpers/gateway.ts';

const K1 = 'sk-client-one-0001';
const K2 = 'sk-client-two-0002';
const TOKEN = 'admin-token-own-0001';
const bearer = (k: string) => ({ authorization: `Bearer ${k}` });

/** POST from a chosen loopback source address (127.0.0.2 is another client on the same machine). */
function postFrom(localAddress: string, url: string, body: unknown): Promise<{ status: number; body: any }> {
  const u = new URL(url);
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', localAddress, agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

async function feedbackRows(gw: TestGateway, id: string) {
  await gw.services.store.flush();
  return gw.services.store.all<{ rating: number; source: string; comment: string | null }>('SELECT rating, source, comment FROM user_feedback WHERE request_id = ? ORDER BY source', [id]);
}

describe('request ids are the gateway\'s; the client\'s is a correlation id', () => {
  let gw: TestGateway;
  before(async () => { gw = await startGateway(); });
  after(async () => { await gw?.close(); });

  test('a client x-request-id is echoed as x-client-request-id and stored, never used as the key', async () => {
    const a = await postJson(`${gw.url}/api/chat`, { message: 'first caller' }, { 'x-request-id': 'shared-client-id-01' });
    const b = await postJson(`${gw.url}/api/chat`, { message: 'second caller' }, { 'x-request-id': 'shared-client-id-01' });
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    for (const r of [a, b]) {
      assert.match(r.headers.get('x-request-id')!, /^req_[0-9a-f]{32}$/);
      assert.equal(r.headers.get('x-client-request-id'), 'shared-client-id-01');
      assert.equal(r.body.id, r.headers.get('x-request-id'));
    }
    assert.notEqual(a.body.id, b.body.id);
    await gw.services.store.flush();
    const rows = await gw.services.store.all<{ id: string; query_text: string }>('SELECT id, query_text FROM queries WHERE correlation_id = ? ORDER BY ts', ['shared-client-id-01']);
    assert.deepEqual(rows.map((r) => r.query_text).sort(), ['first caller', 'second caller'], 'both callers are stored');
    assert.equal((await gw.services.store.getRequest(b.body.id))?.correlationId, 'shared-client-id-01');
  });

  test('the Express side mints ids too', async () => {
    const r = await fetch(`${gw.url}/health`, { headers: { 'x-request-id': 'my-health-check' } });
    assert.match(r.headers.get('x-request-id')!, /^req_/);
    assert.equal(r.headers.get('x-client-request-id'), 'my-health-check');
  });

  test('without client keys only the same address may rate a request', async () => {
    const chat = await postFrom('127.0.0.1', `${gw.url}/api/chat`, { message: 'rate me' });
    const id = chat.body.id as string;
    const other = await postFrom('127.0.0.2', `${gw.url}/api/feedback`, { request_id: id, rating: 1 });
    assert.equal(other.status, 404, 'another address cannot rate it (and cannot tell it exists)');
    const same = await postFrom('127.0.0.1', `${gw.url}/api/feedback`, { request_id: id, rating: 4 });
    assert.equal(same.status, 201);
    assert.deepEqual(await feedbackRows(gw, id), [{ rating: 4, source: 'user', comment: null }]);
  });
});

describe('ratings belong to the caller that made the request', () => {
  let gw: TestGateway;
  before(async () => { gw = await startGateway({ env: { PROXY_API_KEYS: `${K1},${K2}`, ADMIN_TOKEN: TOKEN } }); });
  after(async () => { await gw?.close(); });

  async function chatAs(key: string, message: string): Promise<string> {
    const r = await postJson(`${gw.url}/api/chat`, { message, model: 'demo-fast' }, bearer(key));
    assert.equal(r.status, 200);
    return r.body.id;
  }

  test('another key cannot rate a request: 404, nothing stored', async () => {
    const id = await chatAs(K1, 'a question from key one');
    const r = await postJson(`${gw.url}/api/feedback`, { request_id: id, rating: 1 }, bearer(K2));
    assert.equal(r.status, 404);
    assert.deepEqual(await feedbackRows(gw, id), []);
  });

  test('one rating per request and source: a new one replaces the old, and the totals count it once', async () => {
    const id = await chatAs(K1, 'rate this several times');
    const perf = async () => (await gw.services.store.all<{ n: number; s: number }>("SELECT SUM(rating_count) AS n, SUM(rating_sum) AS s FROM model_performance WHERE model = 'demo-fast'"))[0]!;
    await gw.services.store.flush();
    const base = await perf();
    for (const rating of [5, 5, 5, 1, 2]) {
      const r = await postJson(`${gw.url}/api/feedback`, { request_id: id, rating, comment: `r${rating}` }, bearer(K1));
      assert.equal(r.status, 201);
      if (rating === 5) await gw.services.store.flush(); // some in separate batches, some in one
    }
    assert.deepEqual(await feedbackRows(gw, id), [{ rating: 2, source: 'user', comment: 'r2' }]);
    const now = await perf();
    assert.equal(Number(now.n) - Number(base.n ?? 0), 1, 'counted once');
    assert.equal(Number(now.s) - Number(base.s ?? 0), 2, 'with the latest rating');
  });

  test('an admin credential may rate any request, marked admin, beside the caller\'s own rating', async () => {
    const id = await chatAs(K2, 'admin will rate this');
    assert.equal((await postJson(`${gw.url}/api/feedback`, { request_id: id, rating: 3 }, bearer(K2))).status, 201);
    const a = await postJson(`${gw.url}/api/feedback`, { request_id: id, rating: 5 }, bearer(TOKEN));
    assert.equal(a.status, 201);
    assert.equal(a.body.source, 'admin');
    assert.deepEqual(await feedbackRows(gw, id), [{ rating: 5, source: 'admin', comment: null }, { rating: 3, source: 'user', comment: null }]);
  });

  test('the ids clients see in answers are accepted: chatcmpl-req_... (official openai SDK) and msg_req_...', async () => {
    const client = new OpenAI({ apiKey: K1, baseURL: `${gw.url}/v1`, maxRetries: 0 });
    const completion = await client.chat.completions.create({ model: 'demo-fast', messages: [{ role: 'user', content: 'sdk question' }] });
    assert.match(completion.id, /^chatcmpl-req_/);
    const r = await postJson(`${gw.url}/api/feedback`, { request_id: completion.id, rating: 4 }, bearer(K1));
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.request_id, completion.id.slice('chatcmpl-'.length));
    assert.deepEqual((await feedbackRows(gw, r.body.request_id)).map((f) => f.rating), [4]);

    const m = await postJson(`${gw.url}/v1/messages`, { model: 'demo-fast', max_tokens: 50, messages: [{ role: 'user', content: 'anthropic question' }] }, { 'x-api-key': K1 });
    assert.equal(m.status, 200);
    assert.match(m.body.id, /^msg_req_/);
    const f = await postJson(`${gw.url}/api/feedback`, { request_id: m.body.id, rating: 2 }, { 'x-api-key': K1 });
    assert.equal(f.status, 201, JSON.stringify(f.body));
    assert.deepEqual((await feedbackRows(gw, m.body.id.slice(4))).map((x) => x.rating), [2]);
  });
});
