// Bad input gets a clear 4xx in the OpenAI error shape, never a crash or a 500, and nothing
// already stored changes.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, postJson, type TestGateway } from '../helpers/gateway.ts';

describe('input validation', () => {
  let gw: TestGateway;
  let storedBefore = 0;
  before(async () => {
    gw = await startGateway();
    await postJson(`${gw.url}/api/chat`, { message: 'seed row', model: 'demo-fast' });
    await gw.services.store.flush();
    storedBefore = await gw.services.store.countRequests();
  });
  after(async () => {
    await gw.close();
  });

  const cases: { name: string; path: string; body: unknown; status: number; match: RegExp; contentType?: string }[] = [
    { name: 'invalid JSON', path: '/api/chat', body: '{"message": "unterminated', status: 400, match: /not valid JSON/ },
    { name: 'a JSON array body', path: '/api/chat', body: '[1,2,3]', status: 400, match: /JSON object/ },
    { name: 'wrong type for messages', path: '/api/chat', body: { messages: 'hello' }, status: 400, match: /messages/ },
    { name: 'wrong type for temperature', path: '/v1/chat/completions', body: { messages: [{ role: 'user', content: 'x' }], temperature: 'hot' }, status: 400, match: /temperature/ },
    { name: 'a bad role', path: '/v1/chat/completions', body: { messages: [{ role: 'wizard', content: 'x' }] }, status: 400, match: /role/ },
    { name: 'no messages at all', path: '/api/chat', body: {}, status: 400, match: /messages/ },
    { name: 'empty messages', path: '/v1/chat/completions', body: { messages: [] }, status: 400, match: /at least one message/ },
    { name: 'only blank user text', path: '/api/chat', body: { messages: [{ role: 'user', content: '   ' }] }, status: 400, match: /non-empty user message/ },
    { name: 'an unknown model', path: '/v1/chat/completions', body: { model: 'gpt-17', messages: [{ role: 'user', content: 'x' }] }, status: 404, match: /gpt-17/ },
    { name: 'an unknown model on /api/chat', path: '/api/chat', body: { model: 'nope', message: 'x' }, status: 404, match: /nope/ },
    { name: 'a bad regex in routing_rules', path: '/api/chat', body: { message: 'x', routing_rules: [{ pattern: '([a-z', model: 'demo-fast' }] }, status: 400, match: /routing_rules\.0\.pattern "\(\[a-z"/ },
    { name: 'a backreference RE2 cannot run', path: '/api/chat', body: { message: 'x', routing_rules: [{ pattern: '(a+)\\1$', model: 'demo-fast' }] }, status: 400, match: /\(a\+\)\\\\1\$/ },
    { name: 'a routing rule naming an unknown model', path: '/api/chat', body: { message: 'x', routing_rules: [{ pattern: 'x', model: 'ghost' }] }, status: 400, match: /ghost/ },
    { name: 'a tool without its function', path: '/v1/chat/completions', body: { messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function' }] }, status: 400, match: /tools\.0\.function/ },
    { name: 'tools for a model that cannot call them', path: '/v1/chat/completions', body: { model: 'demo-fast', messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function', function: { name: 'f' } }] }, status: 400, match: /tools/ },
    { name: 'an image_url part without its url', path: '/v1/chat/completions', body: { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }] }, status: 400, match: /image_url\.url/ },
    { name: 'Anthropic request with a bad role', path: '/api/claude', body: { messages: [{ role: 'system', content: 'x' }], max_tokens: 5 }, status: 400, match: /role/ },
    { name: 'weights without an admin credential', path: '/api/config/weights', body: { weights: { 'demo-fast': -1 } }, status: 403, match: /admin credential/ },
    { name: 'an unknown route', path: '/api/nothing', body: {}, status: 404, match: /No route/ },
  ];

  for (const c of cases) {
    test(`${c.name} -> ${c.status} with a clear message`, async () => {
      const r = await postJson(`${gw.url}${c.path}`, c.body);
      assert.equal(r.status, c.status, JSON.stringify(r.body));
      const err = c.path === '/api/claude' ? r.body.error : r.body.error;
      assert.equal(typeof err.message, 'string');
      assert.equal(typeof err.type, 'string');
      assert.ok('code' in err && 'param' in err, 'OpenAI error shape');
      assert.match(err.message, c.match);
    });
  }

  test('a 5 MB body is refused with 413', async () => {
    const big = JSON.stringify({ message: 'x'.repeat(5 * 1024 * 1024) });
    const r = await postJson(`${gw.url}/api/chat`, big);
    assert.equal(r.status, 413);
    assert.match(r.body.error.message, /larger than the limit/);
  });

  test('Anthropic-path errors use the Anthropic envelope, which still carries message and type', async () => {
    const r = await postJson(`${gw.url}/api/claude`, { messages: [] });
    assert.equal(r.status, 400);
    assert.equal(r.body.type, 'error');
    assert.match(r.body.error.message, /at least one message/);
  });

  test('after all the bad input the server still answers and nothing stored changed', async () => {
    const ok = await postJson(`${gw.url}/api/chat`, { message: 'still alive?', model: 'demo-fast' });
    assert.equal(ok.status, 200);
    await gw.services.store.flush();
    assert.equal(await gw.services.store.countRequests(), storedBefore + 1);
  });
});
