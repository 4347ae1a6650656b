// The configured limits, end to end: body size (413), per-key rate limit (429 + Retry-After),
// per-request timeout, concurrent upstream calls per model, and client API keys (401).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { StandIn } from '../standins/common.ts';
import { model, type TestGateway, alphaBeta } from '../helpers/gateway.ts';
import { rawPost, runConcurrent, timedPost } from '../helpers/load.ts';

const BODY_LIMIT = 8192;
const REQUEST_TIMEOUT_MS = 800;
const RATE_BURST = 20;
/** Each test uses its own client key, so each has its own rate-limit bucket. */
const KEYS = { body: 'key-body-0001', rate: 'key-rate-0001', other: 'key-other-001', timeout: 'key-timeout-1', conc: 'key-conc-0001' };

const auth = (key: string) => ({ authorization: `Bearer ${key}` });
const completion = (content: string, modelId = 'auto') => ({ model: modelId, messages: [{ role: 'user', content }] });

describe('limits', () => {
  let a: StandIn;
  let b: StandIn;
  let gw: TestGateway;
  // alpha takes the global per-model cap; beta overrides it in its spec.
  alphaBeta({
    TEST_KEY: 'sk-test-reliability-key-0004',
    BODY_LIMIT_BYTES: String(BODY_LIMIT),
    RATE_LIMIT_RPS: '1',
    RATE_LIMIT_BURST: String(RATE_BURST),
    REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    UPSTREAM_TIMEOUT_MS: '5000',
    MAX_CONCURRENT_PER_MODEL: '2',
    PROXY_API_KEYS: Object.values(KEYS).join(','),
  }, (t) => ({ a, b, gw } = t), { maxConcurrent: 100 });

  test('a body over BODY_LIMIT_BYTES is refused with 413 in the error shape; one just under it is served', async () => {
    const padding = (n: number) => JSON.stringify(completion('x'.repeat(n), 'alpha'));
    const over = await rawPost(`${gw.url}/v1/chat/completions`, padding(BODY_LIMIT), auth(KEYS.body));
    assert.equal(over.status, 413);
    assert.match((over.json as { error: { message: string } }).error.message, new RegExp(`larger than the limit of ${BODY_LIMIT} bytes`));
    const chunked = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth(KEYS.body) },
      // A stream body is sent chunked, without a Content-Length to refuse up front.
      body: new Blob([padding(BODY_LIMIT * 4)]).stream(),
      duplex: 'half',
    } as RequestInit);
    assert.equal(chunked.status, 413);
    assert.equal(((await chunked.json()) as { error: { code: string } }).error.code, 'body_too_large');
    const under = await rawPost(`${gw.url}/v1/chat/completions`, padding(BODY_LIMIT - 200), auth(KEYS.body));
    assert.equal(under.status, 200);
  });

  test('past its burst a client key gets 429 with Retry-After, while another key is unaffected', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < RATE_BURST + 3; i++) statuses.push((await timedPost(`${gw.url}/v1/chat/completions`, completion(`rate ${i}`), 2000, auth(KEYS.rate))).status);
    assert.deepEqual(statuses.slice(0, RATE_BURST - 1), new Array(RATE_BURST - 1).fill(200));
    assert.equal(statuses[statuses.length - 1], 429);
    const limited = await timedPost(`${gw.url}/v1/chat/completions`, completion('one more'), 2000, auth(KEYS.rate));
    assert.equal(limited.status, 429);
    assert.equal(limited.json.error.type, 'rate_limit_error');
    assert.match(limited.json.error.message, /Rate limit exceeded/);
    const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth(KEYS.rate) }, body: JSON.stringify(completion('header?')) });
    await res.text();
    assert.ok(Number(res.headers.get('retry-after')) >= 1, `Retry-After header (${res.headers.get('retry-after')})`);
    const other = await timedPost(`${gw.url}/v1/chat/completions`, completion('another key'), 2000, auth(KEYS.other));
    assert.equal(other.status, 200);
  });

  test('REQUEST_TIMEOUT_MS bounds a request even when the attempt timeout is longer: 504, stored', async () => {
    a.behave('stall');
    b.behave('stall');
    const r = await timedPost(`${gw.url}/v1/chat/completions`, completion('never answered'), REQUEST_TIMEOUT_MS + 1000, auth(KEYS.timeout));
    assert.equal(r.status, 504);
    assert.equal(r.json.error.type, 'timeout_error');
    assert.ok(r.ms >= REQUEST_TIMEOUT_MS - 50, `waited about the request timeout (${r.ms} ms)`);
    await gw.services.store.flush();
    const rec = await gw.services.store.getRequest(r.id);
    assert.equal(rec?.httpStatus, 504);
  });

  test('MAX_CONCURRENT_PER_MODEL sends the excess to the next candidate, or 503 when there is none', async () => {
    a.behave({ kind: 'ok', delayMs: 300 });
    const routed = await Promise.all(Array.from({ length: 6 }, (_, i) => timedPost(`${gw.url}/v1/chat/completions`, completion(`busy ${i}`), 3000, auth(KEYS.conc))));
    const byModel = routed.map((r) => r.json.model).sort();
    assert.deepEqual(byModel, ['alpha', 'alpha', 'beta', 'beta', 'beta', 'beta']);
    await gw.services.store.flush();
    const spilled = routed.find((r) => r.json.model === 'beta')!;
    const rec = await gw.services.store.getRequest(spilled.id);
    assert.equal(rec?.calls[0]?.status, 'skipped');
    assert.match(rec?.calls[0]?.error ?? '', /concurrency limit \(2\)/);

    const explicit = await runConcurrent(5, 5, (i) => timedPost(`${gw.url}/v1/chat/completions`, completion(`only alpha ${i}`, 'alpha'), 3000, auth(KEYS.conc)));
    const statuses = explicit.map((r) => r.status).sort();
    assert.deepEqual(statuses, [200, 200, 503, 503, 503]);
    const refused = explicit.find((r) => r.status === 503)!;
    assert.equal(refused.json.error.code, 'no_model_available');
    assert.match(refused.json.error.message, /concurrency limit/);
  });

  test('with PROXY_API_KEYS set, a missing or wrong key is 401 and a valid one (Bearer or x-api-key) is served', async () => {
    const none = await timedPost(`${gw.url}/v1/chat/completions`, completion('no key'), 2000);
    assert.equal(none.status, 401);
    assert.equal(none.json.error.type, 'authentication_error');
    const wrong = await timedPost(`${gw.url}/v1/chat/completions`, completion('wrong key'), 2000, auth('key-wrong-0001'));
    assert.equal(wrong.status, 401);
    assert.doesNotMatch(wrong.text, /key-wrong-0001/, 'the key is not echoed');
    const bearer = await timedPost(`${gw.url}/v1/chat/completions`, completion('bearer'), 2000, auth(KEYS.other));
    assert.equal(bearer.status, 200);
    const header = await timedPost(`${gw.url}/v1/chat/completions`, completion('x-api-key'), 2000, { 'x-api-key': KEYS.other });
    assert.equal(header.status, 200);
    const health = await fetch(`${gw.url}/health`);
    await health.text();
    assert.equal(health.status, 401, 'every route needs the key');
  });
});
