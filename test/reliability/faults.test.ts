// Upstream faults through the real gateway over loopback: errors, Retry-After, stalls, resets,
// malformed bodies, trickles, Ollama down or slow.
// Every request gets a fallback answer or a clear error within the configured bound, and is stored.
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { startOpenAIStandIn } from '../standins/openai.ts';
import { startAnthropicStandIn } from '../standins/anthropic.ts';
import { startOllamaStandIn } from '../standins/ollama.ts';
import type { StandIn } from '../standins/common.ts';
import { startGateway, fixedRouter, model, type TestGateway } from '../helpers/gateway.ts';
import { closedPort, sseEvents, timedPost } from '../helpers/load.ts';
import type { Router } from '../../router/types.ts';
import type { StoredRequest } from '../../server/store/types.ts';

const ATTEMPT_TIMEOUT_MS = 400;
const REQUEST_TIMEOUT_MS = 4000;
/** No request may take longer than its configured bound plus scheduling slack. */
const HANG_BOUND_MS = REQUEST_TIMEOUT_MS + 1500;

const env = {
  TEST_KEY: 'sk-test-reliability-key-0001',
  UPSTREAM_TIMEOUT_MS: String(ATTEMPT_TIMEOUT_MS),
  REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
  RETRY_BASE_MS: '10',
  RETRY_MAX_MS: '100',
  MAX_RETRIES: '2',
  BREAKER_FAILURES: '1000',
};

const send = (url: string, body: unknown) => timedPost(url, body, HANG_BOUND_MS);
const events = sseEvents;

const chat = (message: string, extra: Record<string, unknown> = {}) => ({ message, ...extra });
const completion = (content: string, extra: Record<string, unknown> = {}) => ({ model: 'auto', messages: [{ role: 'user', content }], ...extra });

describe('upstream faults: fallback or a clear error, bounded in time, always stored', () => {
  let a: StandIn;
  let b: StandIn;
  let o: StandIn;
  let gw: TestGateway;
  let order = ['alpha', 'beta'];
  const router: Router = { route: (req, candidates) => fixedRouter(order).route(req, candidates) };

  async function stored(id: string): Promise<StoredRequest> {
    await gw.services.store.flush();
    const rec = await gw.services.store.getRequest(id);
    assert.ok(rec, `request ${id} is stored`);
    return rec;
  }

  before(async () => {
    a = await startOpenAIStandIn();
    b = await startAnthropicStandIn();
    o = await startOllamaStandIn();
    const down = await closedPort();
    gw = await startGateway({
      models: [
        model('alpha', 'openai', a.url),
        model('beta', 'anthropic', b.url),
        model('local-down', 'ollama', `http://127.0.0.1:${down}`),
        model('local-slow', 'ollama', o.url),
      ],
      env,
      router,
    });
  });
  after(async () => {
    await gw.close();
    await Promise.all([a.close(), b.close(), o.close()]);
  });
  beforeEach(() => {
    order = ['alpha', 'beta'];
    for (const s of [a, b, o]) s.reset();
  });

  test('500s exhaust the retries on the first model, the next model answers, and every attempt is stored', async () => {
    a.behave({ kind: 'error', status: 500 });
    const r = await send(`${gw.url}/api/chat`, chat('five hundred'));
    assert.equal(r.status, 200);
    assert.equal(r.json._actual_model_used, 'beta');
    assert.equal(a.requests.length, 3);
    const rec = await stored(r.id);
    assert.equal(rec.status, 'ok');
    assert.equal(rec.finalModel, 'beta');
    assert.deepEqual(rec.calls.map((c) => [c.model, c.status, c.httpStatus]), [['alpha', 'error', 500], ['alpha', 'error', 500], ['alpha', 'error', 500], ['beta', 'ok', 200]]);
  });

  test('a 429 with Retry-After is waited for and retried on the same model', async () => {
    // Under RETRY_MAX_MS (100), so the same model is retried rather than skipped.
    a.enqueue({ kind: 'error', status: 429, retryAfter: '0.08' });
    const r = await send(`${gw.url}/v1/chat/completions`, completion('rate limited'));
    assert.equal(r.status, 200);
    assert.equal(r.json.model, 'alpha');
    assert.ok(r.ms >= 75, `waited for Retry-After (${r.ms} ms)`);
    const rec = await stored(r.id);
    assert.deepEqual(rec.calls.map((c) => [c.status, c.httpStatus]), [['error', 429], ['ok', 200]]);
  });

  test('a 503 whose Retry-After is longer than the backoff cap moves to the next model at once', async () => {
    a.enqueue({ kind: 'error', status: 503, retryAfter: '30' });
    const r = await send(`${gw.url}/api/chat`, chat('overloaded'));
    assert.equal(r.status, 200);
    assert.equal(r.json._actual_model_used, 'beta');
    assert.ok(r.ms < 1000, `did not wait 30 s (${r.ms} ms)`);
    assert.equal(a.requests.length, 1);
    assert.equal((await stored(r.id)).calls[0]!.httpStatus, 503);
  });

  test('when every model stalls the client gets a 504 timeout error within the bound, and the failure is stored', async () => {
    a.behave('stall');
    b.behave('stall');
    const r = await send(`${gw.url}/v1/chat/completions`, completion('everyone is asleep'));
    assert.equal(r.status, 504);
    assert.equal(r.json.error.type, 'timeout_error');
    assert.match(r.json.error.message, /alpha/);
    const rec = await stored(r.id);
    assert.equal(rec.status, 'error');
    assert.equal(rec.httpStatus, 504);
    assert.ok(rec.calls.length >= 2 && rec.calls.every((c) => c.status === 'timeout'), JSON.stringify(rec.calls.map((c) => c.status)));
  });

  test('a connection reset half-way through a JSON answer is retried and the client gets the whole answer', async () => {
    a.enqueue('drop-mid-stream');
    const r = await send(`${gw.url}/api/chat`, chat('reset me'));
    assert.equal(r.status, 200);
    assert.equal(r.json._actual_model_used, 'alpha');
    assert.match(r.json.content, /reply from alpha-upstream/);
    assert.deepEqual((await stored(r.id)).calls.map((c) => c.status), ['error', 'ok']);
  });

  test('a stream reset after its first chunks ends with an error event, not a hang, and is stored as failed mid-way', async () => {
    a.enqueue({ kind: 'drop-mid-stream', afterChunks: 3 });
    const r = await send(`${gw.url}/v1/chat/completions`, completion('drop my stream please', { stream: true }));
    assert.equal(r.status, 200);
    const evs = events(r.text);
    assert.ok(evs.some((e) => e?.choices?.[0]?.delta?.content), 'some content arrived before the reset');
    const last = evs[evs.length - 1];
    assert.equal(last.error.code, 'stream_interrupted');
    const rec = await stored(r.id);
    assert.equal(rec.status, 'error');
    assert.equal(rec.httpStatus, 502);
    assert.match(rec.error ?? '', /stream failed mid-way/);
  });

  test('a stream reset before its first chunk is retried invisibly', async () => {
    a.enqueue({ kind: 'drop-mid-stream', afterChunks: 0 });
    const r = await send(`${gw.url}/api/chat`, chat('reset before anything', { stream: true }));
    assert.equal(r.status, 200);
    const evs = events(r.text);
    assert.equal(evs.find((e) => e.type === 'done')?._actual_model_used, 'alpha');
    assert.ok(!evs.some((e) => e.type === 'error'));
    assert.deepEqual((await stored(r.id)).calls.map((c) => c.status), ['error', 'ok']);
  });

  test('malformed JSON from the upstream is not retried; the next model answers', async () => {
    a.enqueue('malformed');
    const r = await send(`${gw.url}/api/chat`, chat('garbled'));
    assert.equal(r.status, 200);
    assert.equal(r.json._actual_model_used, 'beta');
    assert.equal(a.requests.length, 1);
    const rec = await stored(r.id);
    assert.match(rec.calls[0]!.error ?? '', /malformed JSON/);
  });

  test('a malformed SSE event before any content falls back to the next model before the client sees a byte', async () => {
    a.enqueue('malformed');
    const r = await send(`${gw.url}/v1/chat/completions`, completion('garbled stream', { stream: true }));
    assert.equal(r.status, 200);
    const evs = events(r.text);
    assert.equal(evs[0]._actual_model_used, 'beta');
    assert.equal(evs[evs.length - 1], '[DONE]');
    assert.equal((await stored(r.id)).finalModel, 'beta');
  });

  test('a truncated stream (no terminal event) ends with an error event and is stored as failed', async () => {
    a.enqueue({ kind: 'truncate', afterChunks: 3 });
    const r = await send(`${gw.url}/api/chat`, chat('cut me short please, at once', { stream: true }));
    const evs = events(r.text);
    const err = evs.find((e) => e.type === 'error');
    assert.ok(err, 'an error event');
    assert.match(err.error.message, /truncated/);
    assert.equal(evs[evs.length - 1], '[DONE]', 'the stream is closed properly after the error');
    const rec = await stored(r.id);
    assert.equal(rec.status, 'error');
    assert.match(rec.error ?? '', /truncated/);
  });

  test('a slow trickle whose gaps stay under the idle timeout streams to the end', async () => {
    // The idle clock restarts on parts with content; the three frames after the last word (finish,
    // usage, [DONE]) must together stay under it, hence 100 ms gaps against a 400 ms timeout.
    a.enqueue({ kind: 'trickle', intervalMs: 100 });
    const r = await send(`${gw.url}/v1/chat/completions`, completion('trickle along slowly', { stream: true }));
    assert.ok(r.ms > ATTEMPT_TIMEOUT_MS, `the whole stream took longer (${r.ms} ms) than one idle timeout`);
    const evs = events(r.text);
    assert.equal(evs[evs.length - 1], '[DONE]');
    assert.ok(!evs.some((e) => e.error));
    assert.equal((await stored(r.id)).status, 'ok');
  });

  test('a stream that stalls after some chunks is cut after the idle timeout with an error event', async () => {
    a.enqueue({ kind: 'stall', afterChunks: 3 });
    const r = await send(`${gw.url}/v1/chat/completions`, completion('start then stall', { stream: true }));
    assert.ok(r.ms < ATTEMPT_TIMEOUT_MS + 1000, `cut after about the idle timeout (${r.ms} ms)`);
    const evs = events(r.text);
    assert.equal(evs[evs.length - 1].error.code, 'stream_interrupted');
    const rec = await stored(r.id);
    assert.equal(rec.status, 'error');
    assert.equal(rec.calls[rec.calls.length - 1]!.status, 'timeout');
  });

  test('Ollama down (connection refused): the next model answers quickly', async () => {
    order = ['local-down', 'beta'];
    const r = await send(`${gw.url}/api/chat`, chat('is ollama there?'));
    assert.equal(r.status, 200);
    assert.equal(r.json._actual_model_used, 'beta');
    assert.ok(r.ms < 1500, `refused connections fail fast (${r.ms} ms)`);
    const rec = await stored(r.id);
    assert.ok(rec.calls.filter((c) => c.model === 'local-down').every((c) => /ECONNREFUSED|connection failed/.test(c.error ?? '')), JSON.stringify(rec.calls));
  });

  test('Ollama slow: its attempts time out and the next model answers', async () => {
    order = ['local-slow', 'beta'];
    o.behave({ kind: 'ok', delayMs: 3000 });
    const r = await send(`${gw.url}/api/chat`, chat('ollama, take your time'));
    assert.equal(r.status, 200);
    assert.equal(r.json._actual_model_used, 'beta');
    const rec = await stored(r.id);
    assert.ok(rec.calls.some((c) => c.model === 'local-slow' && c.status === 'timeout'));
  });
});
