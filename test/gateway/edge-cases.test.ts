// Edge cases found in review: a client leaving mid-stream is not the model's failure, made-up API
// keys do not buy fresh rate-limit buckets, text/plain bodies (cross-site forms) are refused, and a
// malformed URL is a 400, not a 500.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOpenAIStandIn } from '../standins/openai.ts';
import type { StandIn } from '../standins/common.ts';
import { startGateway, postJson, fixedRouter, model, type TestGateway } from '../helpers/gateway.ts';

describe('edge cases', () => {
  let up: StandIn;
  let gw: TestGateway;
  before(async () => {
    up = await startOpenAIStandIn();
    gw = await startGateway({
      models: [model('alpha', 'openai', up.url)],
      env: { TEST_KEY: 'k-test-123456', RATE_LIMIT_RPS: '0.5', RATE_LIMIT_BURST: '20' },
      router: fixedRouter(['alpha']),
    });
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  test('a client that leaves mid-stream is stored as 499 and does not count against the model', async () => {
    up.enqueue({ kind: 'trickle', intervalMs: 150, text: 'one two three four five six seven eight' });
    const ac = new AbortController();
    const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', signal: ac.signal, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ stream: true, messages: [{ role: 'user', content: 'stream then leave' }] }) });
    const id = res.headers.get('x-request-id')!;
    const reader = res.body!.getReader();
    let seen = '';
    while (!seen.includes('"content":"')) seen += new TextDecoder().decode((await reader.read()).value);
    ac.abort();
    const deadline = Date.now() + 5000;
    let row = null;
    while (!row && Date.now() < deadline) {
      await gw.services.store.flush();
      row = await gw.services.store.getRequest(id);
      if (!row) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(row, 'stored');
    assert.equal(row.httpStatus, 499);
    assert.match(row.error ?? '', /client closed/);
    const alpha = gw.services.registry.get('alpha')!;
    assert.equal(alpha.breaker.consecutiveFailures, 0);
    assert.equal(alpha.inflight, 0);
  });

  test('a text/plain body is refused (browsers send it cross-site without a preflight)', async () => {
    const r = await fetch(`${gw.url}/api/config/weights`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ weights: { alpha: 0 } }) });
    assert.equal(r.status, 400);
    assert.equal(gw.services.registry.get('alpha')!.weight, 1);
  });

  test('a malformed percent-encoding in the URL is a 400 in the OpenAI error shape', async () => {
    const r = await fetch(`${gw.url}/v1/models/%E0%A4%A`);
    assert.equal(r.status, 400);
    const body = await r.json();
    assert.equal(body.error.type, 'invalid_request_error');
  });

  test('rotating made-up API keys does not get around the rate limit when keys are not configured', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await postJson(`${gw.url}/api/chat`, { message: `hello ${i}` }, { authorization: `Bearer junk-${i}` });
      statuses.push(r.status);
    }
    assert.ok(statuses.includes(429), `statuses: ${statuses.join(',')}`);
  });
});

describe('an embedder that cannot load', () => {
  test('the built-in one takes over and /health says why', async () => {
    const up = await startOpenAIStandIn();
    const gw = await startGateway({ models: [model('alpha', 'openai', up.url)], env: { TEST_KEY: 'k-test-123456', EMBEDDER: 'ollama', OLLAMA_HOST: 'http://127.0.0.1:9' } });
    try {
      const h = await (await fetch(`${gw.url}/health`)).json();
      assert.match(String(h.router.embedderFallback), /.+/);
      assert.equal(h.router.embedder.name.startsWith('builtin'), true, JSON.stringify(h.router.embedder));
      assert.equal((await postJson(`${gw.url}/api/chat`, { message: 'still routed' })).status, 200);
    } finally {
      await gw.close();
      await up.close();
    }
  });
});
