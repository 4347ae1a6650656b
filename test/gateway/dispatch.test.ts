// Retries, Retry-After, circuit breaker, fallback and timeouts, through the real server over HTTP.
import { test, describe, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import type { StandIn } from '../standins/common.ts';
import { postJson, model, type TestGateway, alphaBeta } from '../helpers/gateway.ts';

describe('dispatch: retries, breaker, fallback, timeouts', () => {
  let a: StandIn;
  let b: StandIn;
  let gw: TestGateway;
  alphaBeta({ TEST_KEY: 'sk-test-secret-key-123456' }, (t) => ({ a, b, gw } = t));
  beforeEach(() => {
    for (const rt of gw.services.registry.all()) rt.breaker.onSuccess();
  });

  test('a 429 followed by success is retried on the same model', async () => {
    a.enqueue({ kind: 'error', status: 429, retryAfter: '0' });
    const r = await postJson(`${gw.url}/api/chat`, { message: 'hello there' });
    assert.equal(r.status, 200);
    assert.equal(r.body._actual_model_used, 'alpha');
    assert.equal(a.requests.length, 2);
    assert.equal(b.requests.length, 0);
    assert.deepEqual(r.body._routing.attempts.map((x: { status: string }) => x.status), ['error', 'ok']);
  });

  test('Retry-After is honoured before the retry', async () => {
    a.enqueue({ kind: 'error', status: 503, retryAfter: '0.09' });
    const t0 = Date.now();
    const r = await postJson(`${gw.url}/api/chat`, { message: 'retry after me' });
    assert.equal(r.status, 200);
    assert.ok(Date.now() - t0 >= 85, 'waited for Retry-After');
    assert.equal(r.body._actual_model_used, 'alpha');
    assert.equal(a.requests.length, 2);
  });

  test('a Retry-After longer than the longest backoff moves on to the next model at once', async () => {
    a.enqueue({ kind: 'error', status: 429, retryAfter: '30' });
    const t0 = Date.now();
    const r = await postJson(`${gw.url}/api/chat`, { message: 'too long to wait' });
    assert.equal(r.body._actual_model_used, 'beta');
    assert.equal(a.requests.length, 1);
    assert.ok(Date.now() - t0 < 1000);
  });

  test('a 400 from the upstream (the request is at fault) keeps its status and message: no retry, no fallback', async () => {
    a.enqueue({ kind: 'error', status: 400, message: 'prompt is too long: 210000 tokens > 200000 maximum' });
    const r = await postJson(`${gw.url}/api/chat`, { message: 'fallback please' });
    assert.equal(r.status, 400);
    assert.match(r.body.error.message, /prompt is too long: 210000 tokens > 200000 maximum/);
    assert.equal(r.body.error.code, 'upstream_rejected_request');
    assert.equal(a.requests.length, 1);
    assert.equal(b.requests.length, 0);
  });

  test('a non-retryable 401 (our key) is not retried and falls back to the next candidate', async () => {
    a.enqueue({ kind: 'error', status: 401 });
    const r = await postJson(`${gw.url}/api/chat`, { message: 'fallback please' });
    assert.equal(r.status, 200);
    assert.equal(r.body._actual_model_used, 'beta');
    assert.equal(a.requests.length, 1);
    assert.equal(b.requests.length, 1);
  });

  test('when every candidate fails the client gets an OpenAI-shaped error listing the attempts', async () => {
    a.behave({ kind: 'error', status: 500 });
    b.behave({ kind: 'error', status: 500 });
    const r = await postJson(`${gw.url}/v1/chat/completions`, { model: 'auto', messages: [{ role: 'user', content: 'doomed' }] });
    a.behave('ok');
    b.behave('ok');
    assert.equal(r.status, 502);
    assert.equal(r.body.error.type, 'upstream_error');
    assert.match(r.body.error.message, /alpha/);
    assert.match(r.body.error.message, /beta/);
    assert.ok(r.body.error.details.attempts.length >= 2);
    assert.doesNotMatch(JSON.stringify(r.body), /sk-test-secret/);
  });

  test('a stalled upstream times out and the next candidate answers', async () => {
    a.enqueue('stall', 'stall', 'stall');
    const t0 = Date.now();
    const r = await postJson(`${gw.url}/api/chat`, { message: 'stall then fallback' });
    assert.equal(r.status, 200);
    assert.equal(r.body._actual_model_used, 'beta');
    assert.ok(r.body._routing.attempts.some((x: { status: string }) => x.status === 'timeout'));
    assert.ok(Date.now() - t0 < 9000);
  });

  test('an explicit model is not replaced by another model when it fails', async () => {
    a.behave({ kind: 'error', status: 500 });
    const r = await postJson(`${gw.url}/api/chat`, { message: 'explicit only', model: 'alpha' });
    a.behave('ok');
    assert.equal(r.status, 502);
    assert.equal(b.requests.length, 0);
  });

  test('the breaker opens after repeated failures, skips the model, then half-opens and closes on a good probe', async () => {
    const rt = gw.services.registry.get('alpha')!;
    rt.breaker.onSuccess();
    a.behave({ kind: 'error', status: 500 });
    // 3 failed attempts (1 try + 2 retries) reach BREAKER_FAILURES=3: open.
    const r1 = await postJson(`${gw.url}/api/chat`, { message: 'trip the breaker' });
    assert.equal(r1.body._actual_model_used, 'beta');
    assert.equal(rt.breaker.state, 'open');
    const health = await (await fetch(`${gw.url}/health`)).json();
    assert.equal(health.models.find((m: { id: string }) => m.id === 'alpha').state, 'open');

    const before = a.requests.length;
    const r2 = await postJson(`${gw.url}/api/chat`, { message: 'while open' });
    assert.equal(r2.body._actual_model_used, 'beta');
    assert.equal(a.requests.length, before, 'open breaker: alpha not called');
    assert.equal(r2.body._routing.attempts[0].error, 'circuit open');

    a.behave('ok');
    await new Promise((r) => setTimeout(r, 350)); // BREAKER_COOLDOWN_MS=300
    assert.equal(rt.breaker.state, 'half-open');
    const r3 = await postJson(`${gw.url}/api/chat`, { message: 'probe' });
    assert.equal(r3.body._actual_model_used, 'alpha');
    assert.equal(rt.breaker.state, 'closed');
  });

  test('a failed half-open probe re-opens the breaker', async () => {
    const rt = gw.services.registry.get('alpha')!;
    rt.breaker.onSuccess();
    a.behave({ kind: 'error', status: 503 });
    await postJson(`${gw.url}/api/chat`, { message: 'trip again' });
    assert.equal(rt.breaker.state, 'open');
    await new Promise((r) => setTimeout(r, 350));
    assert.equal(rt.breaker.state, 'half-open');
    const r = await postJson(`${gw.url}/api/chat`, { message: 'bad probe' });
    assert.equal(r.body._actual_model_used, 'beta');
    assert.equal(rt.breaker.state, 'open');
    a.behave('ok');
    await new Promise((r) => setTimeout(r, 350));
    await postJson(`${gw.url}/api/chat`, { message: 'good probe' });
    assert.equal(rt.breaker.state, 'closed');
  });

  test('a stream that fails before its first byte falls back; one that fails mid-way ends with an error event', async () => {
    a.enqueue({ kind: 'error', status: 401 });
    const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'stream fallback' }], stream: true }) });
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /"model":"beta"/);
    assert.match(text, /data: \[DONE\]/);

    a.enqueue({ kind: 'drop-mid-stream', afterChunks: 2, text: 'one two three four five six' });
    const res2 = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'stream drop' }], stream: true }) });
    const text2 = await res2.text();
    assert.match(text2, /"model":"alpha"/);
    assert.match(text2, /"error":\{"message":"upstream stream failed/);
    assert.doesNotMatch(text2, /\[DONE\]/);
  });
});
