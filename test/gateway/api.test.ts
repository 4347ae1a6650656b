// The proxy's own endpoints over real HTTP: /api/chat, routing_rules, explicit models, weights,
// /api/claude, /health, /models, feedback, analyze, and what gets stored.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, postJson, type TestGateway } from '../helpers/gateway.ts';

const ADMIN = 'admin-token-api-test-01';
const asAdmin = { authorization: `Bearer ${ADMIN}` };

describe('proxy API in demo mode', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({ env: { ADMIN_TOKEN: ADMIN } });
  });
  after(async () => {
    await gw.close();
  });

  test('POST /api/chat answers with content, _actual_model_used, _routing, usage and id, labelled as demo', async () => {
    const r = await postJson(`${gw.url}/api/chat`, { message: 'Tell me about the weather' });
    assert.equal(r.status, 200);
    assert.ok(r.body.id.startsWith('req_'));
    assert.equal(r.headers.get('x-request-id'), r.body.id);
    assert.match(r.body.content, /^\[DEMO MODEL demo-/);
    assert.ok(['demo-fast', 'demo-coder', 'demo-polyglot', 'demo-large'].includes(r.body._actual_model_used));
    assert.equal(r.body._demo, true);
    assert.ok(r.body._routing.method);
    assert.ok(r.body._routing.reason.length > 0);
    assert.ok(r.body._routing.features.language);
    assert.ok(r.body.usage.total_tokens > 0);
  });

  test('an explicit model answers', async () => {
    const r = await postJson(`${gw.url}/api/chat`, { messages: [{ role: 'user', content: 'hi' }], model: 'demo-large' });
    assert.equal(r.status, 200);
    assert.equal(r.body._actual_model_used, 'demo-large');
    assert.equal(r.body._routing.method, 'explicit');
  });

  test('routing_rules are regexes tried in order; the first match wins', async () => {
    const rules = [
      { pattern: '^translate', model: 'demo-polyglot' },
      { pattern: 'python', model: 'demo-coder' },
    ];
    const r1 = await postJson(`${gw.url}/api/chat`, { message: 'write python code', routing_rules: rules });
    assert.equal(r1.body._actual_model_used, 'demo-coder');
    assert.equal(r1.body._routing.method, 'request_rules');
    const r2 = await postJson(`${gw.url}/api/chat`, { message: 'translate this python comment', routing_rules: rules });
    assert.equal(r2.body._actual_model_used, 'demo-polyglot');
  });

  test('weights take effect at once and persist', async () => {
    const w = await postJson(`${gw.url}/api/config/weights`, { weights: { 'demo-fast': 0, 'demo-coder': 0, 'demo-polyglot': 0, 'demo-large': 5 } }, asAdmin);
    assert.equal(w.status, 200);
    for (let i = 0; i < 5; i++) {
      const r = await postJson(`${gw.url}/api/chat`, { message: `plain small talk number ${i}` });
      assert.equal(r.body._actual_model_used, 'demo-large');
    }
    const stored = await gw.services.store.getWeights();
    assert.equal(stored.find((x) => x.model === 'demo-large')?.weight, 5);
    assert.equal(stored.find((x) => x.model === 'demo-fast')?.weight, 0);
    const models = await (await fetch(`${gw.url}/models`)).json();
    assert.equal(models.models.find((m: { id: string }) => m.id === 'demo-large').weight, 5);
    await postJson(`${gw.url}/api/config/weights`, { weights: { 'demo-fast': 3, 'demo-coder': 1, 'demo-polyglot': 1, 'demo-large': 1 } }, asAdmin);
  });

  test('weights for an unknown model are refused and change nothing', async () => {
    const r = await postJson(`${gw.url}/api/config/weights`, { weights: { 'demo-fast': 9, nope: 1 } }, asAdmin);
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /nope/);
    assert.equal(gw.services.registry.get('demo-fast')!.weight, 3);
  });

  test('POST /api/claude speaks the Anthropic Messages shape', async () => {
    const r = await postJson(`${gw.url}/api/claude`, { model: 'demo-fast', max_tokens: 100, system: 'be kind', messages: [{ role: 'user', content: [{ type: 'text', text: 'hello claude' }] }] });
    assert.equal(r.status, 200);
    assert.equal(r.body.type, 'message');
    assert.equal(r.body.role, 'assistant');
    assert.equal(r.body.content[0].type, 'text');
    assert.match(r.body.content[0].text, /DEMO MODEL demo-fast/);
    assert.equal(r.body.stop_reason, 'end_turn');
    assert.ok(r.body.usage.output_tokens > 0);
    assert.equal(r.body._actual_model_used, 'demo-fast');
  });

  test('POST /api/claude streams Anthropic events', async () => {
    const res = await fetch(`${gw.url}/api/claude`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'demo-fast', max_tokens: 100, stream: true, messages: [{ role: 'user', content: 'stream please' }] }) });
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const text = await res.text();
    const events = [...text.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
    assert.equal(events[0], 'message_start');
    assert.ok(events.includes('content_block_delta'));
    assert.deepEqual(events.slice(-3), ['content_block_stop', 'message_delta', 'message_stop']);
  });

  test('POST /api/chat with stream: true sends SSE deltas then done', async () => {
    const res = await fetch(`${gw.url}/api/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message: 'stream me', model: 'demo-fast', stream: true }) });
    const text = await res.text();
    const events = text.split('\n\n').filter(Boolean).map((e) => e.replace(/^data: /, ''));
    assert.equal(events.at(-1), '[DONE]');
    const parsed = events.slice(0, -1).map((e) => JSON.parse(e));
    assert.equal(parsed[0].type, 'start');
    assert.equal(parsed.at(-1).type, 'done');
    const content = parsed.filter((p) => p.type === 'delta').map((p) => p.delta).join('');
    assert.match(content, /DEMO MODEL demo-fast/);
  });

  test('GET /health reports demo mode and per-model state; /models lists models without secrets', async () => {
    const h = await (await fetch(`${gw.url}/health`)).json();
    assert.equal(h.demo, true);
    assert.match(h.notice, /Demo mode/);
    assert.equal(h.models.length, 4);
    assert.ok(h.models.every((m: { state: string }) => m.state === 'closed'));
    const m = await (await fetch(`${gw.url}/models`)).json();
    assert.equal(m.models.length, 4);
  });

  test('feedback is validated and stored; unknown ids are 404', async () => {
    const chat = await postJson(`${gw.url}/api/chat`, { message: 'rate me' });
    const ok = await postJson(`${gw.url}/api/feedback`, { request_id: chat.body.id, rating: 4, comment: 'good' });
    assert.equal(ok.status, 201);
    assert.equal((await postJson(`${gw.url}/api/feedback`, { request_id: chat.body.id, rating: 6 })).status, 400);
    assert.equal((await postJson(`${gw.url}/api/feedback`, { request_id: chat.body.id, rating: 2.5 })).status, 400);
    assert.equal((await postJson(`${gw.url}/api/feedback`, { request_id: 'req_nope_nope', rating: 3 })).status, 404);
    await gw.services.store.flush();
    const stored = await gw.services.store.getRequest(chat.body.id);
    assert.deepEqual(stored?.feedback.map((f) => [f.rating, f.comment, f.source]), [[4, 'good', 'user']]);
  });

  test('POST /api/routing/analyze returns a decision without calling a model', async () => {
    const before = await gw.services.store.countRequests();
    const r = await postJson(`${gw.url}/api/routing/analyze`, { message: '请把这段话翻译成英文' });
    assert.equal(r.status, 200);
    assert.equal(r.body._routing.features.language, 'zh');
    assert.ok(r.body.selected);
    await gw.services.store.flush();
    assert.equal(await gw.services.store.countRequests(), before);
  });

  test('every request is stored with its decision and attempts', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push((await postJson(`${gw.url}/api/chat`, { message: `stored ${i}`, model: 'demo-coder' })).body.id);
    await gw.services.store.flush();
    for (const id of ids) {
      const row = await gw.services.store.getRequest(id);
      assert.ok(row, `request ${id} stored`);
      assert.equal(row!.finalModel, 'demo-coder');
      assert.equal(row!.status, 'ok');
      assert.match(row!.answer ?? '', /DEMO MODEL demo-coder/);
      assert.equal(row!.decision?.method, 'explicit');
      assert.equal(row!.calls.length, 1);
      assert.equal(row!.calls[0].status, 'ok');
    }
  });

  test('answered, unrated queries do not grow the kNN index: they are no evidence of quality', async () => {
    const health = async () => (await (await fetch(`${gw.url}/health`)).json()).router;
    const before = await health();
    for (let i = 0; i < 5; i++) await postJson(`${gw.url}/api/chat`, { message: `a brand new question about topic ${i}` });
    // The online feeder drains every 50 ms; give it several ticks.
    await new Promise((r) => setTimeout(r, 300));
    const after = await health();
    assert.equal(after.knn.indexSize, before.knn.indexSize);
    assert.equal(after.onlineIndex.added, before.onlineIndex.added);
    assert.equal(after.onlineIndex.queued, 0);
    assert.equal(after.embedderFallback, null, 'the built-in embedder was configured, nothing replaced');
  });

  test('when no model can be routed to, the client gets a 503 and the request is still stored', async () => {
    await postJson(`${gw.url}/api/config/weights`, { weights: { 'demo-fast': 0, 'demo-coder': 0, 'demo-polyglot': 0, 'demo-large': 0 } }, asAdmin);
    const r = await postJson(`${gw.url}/api/chat`, { message: 'anyone there?' });
    await postJson(`${gw.url}/api/config/weights`, { weights: { 'demo-fast': 3, 'demo-coder': 1, 'demo-polyglot': 1, 'demo-large': 1 } }, asAdmin);
    assert.equal(r.status, 503);
    assert.equal(r.body.error.code, 'no_healthy_model');
    const id = r.headers.get('x-request-id')!;
    await gw.services.store.flush();
    const row = await gw.services.store.getRequest(id);
    assert.equal(row?.status, 'error');
    assert.equal(row?.httpStatus, 503);
    assert.equal(row?.queryText, 'anyone there?');
  });
});
