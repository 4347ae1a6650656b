// Errors that keep their meaning: a request the upstream refuses keeps its status and message (no
// retries, no breaker), a rate limit reaches the client as a 429 with Retry-After at once, one
// client's 429s do not open the breaker, and open breakers answer 503 with Retry-After.
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startOpenAIStandIn } from '../standins/openai.ts';
import { startAnthropicStandIn } from '../standins/anthropic.ts';
import type { StandIn } from '../standins/common.ts';
import { startGateway, model, postJson, type TestGateway } from '../helpers/gateway.ts';

const health = async (gw: TestGateway, id: string) => {
  const body = (await (await fetch(`${gw.url}/health`)).json()) as { models: { id: string; state: string }[] };
  return body.models.find((m) => m.id === id)!.state;
};

describe('upstream errors keep their meaning', () => {
  let oa: StandIn;
  let an: StandIn;
  let gw: TestGateway;
  let openai: OpenAI;
  let anthropic: Anthropic;

  before(async () => {
    oa = await startOpenAIStandIn();
    an = await startAnthropicStandIn();
    gw = await startGateway({
      models: [model('gpt', 'openai', oa.url), model('claude', 'anthropic', an.url)],
      env: { TEST_KEY: 'test-key-abcdef', BREAKER_FAILURES: '3', BREAKER_COOLDOWN_MS: '30000', RETRY_MAX_MS: '8000' },
    });
    // The SDKs' own retries stay on (two by default), as users have them.
    openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused' });
    anthropic = new Anthropic({ baseURL: gw.url, apiKey: 'unused' });
  });
  after(async () => {
    await gw.close();
    await Promise.all([oa.close(), an.close()]);
  });
  beforeEach(() => {
    oa.reset();
    an.reset();
  });

  test('an upstream 400 (context too long) reaches the openai client as a 400 with the upstream message, after one upstream call', async () => {
    oa.enqueue({ kind: 'error', status: 400, message: "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens." });
    await assert.rejects(
      openai.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'a very long prompt' }] }),
      (e: InstanceType<typeof OpenAI.APIError>) => e.status === 400 && /maximum context length is 128000 tokens/.test(e.message),
    );
    assert.equal(oa.requests.length, 1, 'neither the gateway nor the SDK retried');
  });

  for (const status of [404, 413, 422]) {
    test(`an upstream ${status} keeps its status, in the Anthropic envelope on /v1/messages`, async () => {
      an.enqueue({ kind: 'error', status, message: `upstream says ${status}` });
      const r = await postJson(`${gw.url}/v1/messages`, { model: 'claude', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(r.status, status);
      assert.equal(r.body.type, 'error');
      assert.match(r.body.error.message, new RegExp(`upstream says ${status}`));
      assert.equal(an.requests.length, 1);
    });
  }

  test('requests the upstream refuses do not count against its breaker', async () => {
    for (let i = 0; i < 5; i++) {
      oa.enqueue({ kind: 'error', status: 400 });
      const r = await postJson(`${gw.url}/v1/chat/completions`, { model: 'gpt', messages: [{ role: 'user', content: `bad ${i}` }] });
      assert.equal(r.status, 400);
    }
    assert.equal(await health(gw, 'gpt'), 'closed');
  });

  test('a 429 with Retry-After: 7 and no other candidate is a 429 with Retry-After at once, not after waiting 14 s', async () => {
    an.enqueue({ kind: 'error', status: 429, retryAfter: '7' });
    const t0 = Date.now();
    const r = await postJson(`${gw.url}/v1/messages`, { model: 'claude', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 429);
    assert.equal(r.headers.get('retry-after'), '7');
    assert.equal(r.body.error.type, 'rate_limit_error');
    assert.ok(Date.now() - t0 < 3000, `answered in ${Date.now() - t0} ms`);
    assert.equal(an.requests.length, 1);
  });

  test('the anthropic client sees a RateLimitError it can wait out; one short Retry-After is waited out by the gateway', async () => {
    an.enqueue({ kind: 'error', status: 429, retryAfter: '30' });
    const quick = new Anthropic({ baseURL: gw.url, apiKey: 'unused', maxRetries: 0 });
    await assert.rejects(quick.messages.create({ model: 'claude', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }), (e: unknown) => e instanceof Anthropic.RateLimitError && e.headers.get('retry-after') === '30');
    an.enqueue({ kind: 'error', status: 429, retryAfter: '0.2' });
    const ok = await anthropic.messages.create({ model: 'claude', max_tokens: 5, messages: [{ role: 'user', content: 'again' }] });
    assert.equal(ok.type, 'message');
    assert.equal(an.requests.length, 3);
  });

  test("one client's 429s do not open the breaker for everyone", async () => {
    for (let i = 0; i < 6; i++) {
      oa.enqueue({ kind: 'error', status: 429, retryAfter: '60' });
      const r = await postJson(`${gw.url}/v1/chat/completions`, { model: 'gpt', messages: [{ role: 'user', content: `busy ${i}` }] }, { authorization: 'Bearer client-a' });
      assert.equal(r.status, 429);
    }
    assert.equal(await health(gw, 'gpt'), 'closed');
    const other = await openai.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'another client' }] });
    assert.equal(other.choices[0]!.finish_reason, 'stop');
  });

  test('an open breaker answers 503 with Retry-After (explicit model, and auto with every model open)', async () => {
    oa.behave({ kind: 'error', status: 500 });
    an.behave({ kind: 'error', status: 500 });
    try {
      const first = await postJson(`${gw.url}/v1/chat/completions`, { model: 'gpt', messages: [{ role: 'user', content: 'break it' }] });
      assert.equal(first.status, 502);
      assert.equal(await health(gw, 'gpt'), 'open');
      const r = await postJson(`${gw.url}/v1/chat/completions`, { model: 'gpt', messages: [{ role: 'user', content: 'still there?' }] });
      assert.equal(r.status, 503);
      const wait = Number(r.headers.get('retry-after'));
      assert.ok(wait >= 25 && wait <= 30, `retry-after ${wait}`);

      await postJson(`${gw.url}/v1/messages`, { model: 'claude', max_tokens: 5, messages: [{ role: 'user', content: 'break it too' }] });
      assert.equal(await health(gw, 'claude'), 'open');
      const auto = await postJson(`${gw.url}/v1/chat/completions`, { model: 'auto', messages: [{ role: 'user', content: 'anyone?' }] });
      assert.equal(auto.status, 503);
      assert.ok(Number(auto.headers.get('retry-after')) >= 1);
    } finally {
      oa.behave('ok');
      an.behave('ok');
    }
  });
});
