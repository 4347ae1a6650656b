// The Provider contract, checked for every wire format against its stand-in over loopback HTTP:
// answers, streams, usage, finish reasons, error mapping, timeouts, aborts, drops, malformed data.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { UpstreamError } from '../../server/errors.ts';
import { createProvider } from '../../server/providers/index.ts';
import type { ModelEndpoint, ProviderKind, ProviderRequest, StreamPart } from '../../server/providers/types.ts';
import { startAnthropicStandIn } from '../standins/anthropic.ts';
import { collect, startRawUpstream } from '../standins/common.ts';
import type { StandIn, StandInOptions } from '../standins/common.ts';
import { startGeminiStandIn } from '../standins/gemini.ts';
import { startOllamaStandIn } from '../standins/ollama.ts';
import { startOpenAIStandIn } from '../standins/openai.ts';

const KEY = 'sk-test-contract-0123456789';

interface AdapterCase {
  kind: ProviderKind;
  start: (opts: StandInOptions) => Promise<StandIn>;
  models: string[];
  wrongKeyStatus: number;
  /** Stream frames to send so that at least one text delta is among them (Anthropic opens with three meta events). */
  framesWithDeltas: number;
}

const adapters: AdapterCase[] = [
  { kind: 'openai', start: startOpenAIStandIn, models: ['gpt-4o', 'gpt-4o-mini'], wrongKeyStatus: 401, framesWithDeltas: 3 },
  { kind: 'anthropic', start: startAnthropicStandIn, models: ['claude-sonnet-4-5', 'claude-haiku-4-5'], wrongKeyStatus: 401, framesWithDeltas: 5 },
  { kind: 'ollama', start: startOllamaStandIn, models: ['llama3:latest', 'nomic-embed-text:latest'], wrongKeyStatus: 401, framesWithDeltas: 2 },
  { kind: 'gemini', start: startGeminiStandIn, models: ['gemini-2.0-flash', 'text-embedding-004'], wrongKeyStatus: 400, framesWithDeltas: 2 },
];

const request: ProviderRequest = {
  messages: [
    { role: 'system', content: 'Answer briefly.' },
    { role: 'user', content: 'What is the capital of France?' },
  ],
};
const expectedText = 'reply from model-x: What is the capital of France?';

async function rejectsWith(promise: Promise<unknown>, expected: Partial<UpstreamError>): Promise<UpstreamError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof UpstreamError, `expected UpstreamError, got ${String(err)}`);
    for (const [k, v] of Object.entries(expected)) assert.equal(err[k as keyof UpstreamError], v, `${k} of ${err.message}`);
    return err;
  }
  assert.fail('expected the call to fail');
}

for (const adapter of adapters) {
  describe(`${adapter.kind} adapter against its stand-in`, () => {
    const provider = createProvider(adapter.kind);
    let standIn: StandIn;
    let endpoint: ModelEndpoint;

    before(async () => {
      standIn = await adapter.start({ apiKey: KEY });
      endpoint = { baseUrl: standIn.url, upstreamModel: 'model-x', apiKey: KEY };
    });
    after(() => standIn.close());
    beforeEach(() => standIn.reset());

    test('chat returns the upstream text, finish reason, usage and model', async () => {
      const result = await provider.chat(endpoint, request, AbortSignal.timeout(5000));
      assert.equal(result.content, expectedText);
      assert.equal(result.finishReason, 'stop');
      // Stand-ins count chars/4 over all message text, system prompt included.
      assert.deepEqual(result.usage, { inputTokens: Math.ceil('Answer briefly.\nWhat is the capital of France?'.length / 4), outputTokens: Math.ceil(expectedText.length / 4) });
      assert.equal(result.upstreamModel, 'model-x');
    });

    test('stream yields several deltas that join to the answer, then exactly one finish with usage', async () => {
      const parts = await collect(provider.stream(endpoint, request, AbortSignal.timeout(5000)));
      const deltas = parts.filter((p) => p.type === 'delta');
      assert.ok(deltas.length >= 3, `expected several deltas, got ${deltas.length}`);
      assert.equal(deltas.map((p) => (p.type === 'delta' ? p.text : '')).join(''), expectedText);
      const finishes = parts.filter((p) => p.type === 'finish');
      assert.equal(finishes.length, 1);
      assert.deepEqual(parts.at(-1), { type: 'finish', finishReason: 'stop', usage: { inputTokens: 12, outputTokens: 13 } });
    });

    test('a max-tokens stop is reported as finishReason length, in chat and stream', async () => {
      standIn.behave({ kind: 'ok', finishReason: 'length', text: 'cut short' });
      assert.equal((await provider.chat(endpoint, request, AbortSignal.timeout(5000))).finishReason, 'length');
      const last = (await collect(provider.stream(endpoint, request, AbortSignal.timeout(5000)))).at(-1);
      assert.equal(last?.type === 'finish' && last.finishReason, 'length');
    });

    test('429 with Retry-After becomes a retryable http error carrying retryAfterMs', async () => {
      standIn.enqueue({ kind: 'error', status: 429, retryAfter: '2' }, { kind: 'error', status: 429, retryAfter: '1' });
      const err = await rejectsWith(provider.chat(endpoint, request, AbortSignal.timeout(5000)), { code: 'http', status: 429, retryable: true, retryAfterMs: 2000 });
      assert.equal(err.provider, adapter.kind);
      await rejectsWith(collect(provider.stream(endpoint, request, AbortSignal.timeout(5000))), { code: 'http', status: 429, retryAfterMs: 1000 });
    });

    test('400 becomes a non-retryable http error with the upstream message', async () => {
      standIn.behave({ kind: 'error', status: 400, message: 'prompt is too long' });
      const err = await rejectsWith(provider.chat(endpoint, request, AbortSignal.timeout(5000)), { code: 'http', status: 400, retryable: false });
      assert.match(err.message, /prompt is too long/);
    });

    test('500 and 503 are retryable http errors', async () => {
      standIn.enqueue({ kind: 'error', status: 500 }, { kind: 'error', status: 503 });
      await rejectsWith(provider.chat(endpoint, request, AbortSignal.timeout(5000)), { status: 500, retryable: true });
      await rejectsWith(provider.chat(endpoint, request, AbortSignal.timeout(5000)), { status: 503, retryable: true });
    });

    test('a wrong key is rejected by the upstream and never echoed in the error message', async () => {
      const wrongKey = 'sk-test-wrong-9876543210';
      const err = await rejectsWith(provider.chat({ ...endpoint, apiKey: wrongKey }, request, AbortSignal.timeout(5000)), { status: adapter.wrongKeyStatus, retryable: false });
      assert.ok(!err.message.includes(wrongKey));
      standIn.behave({ kind: 'error', status: 401, message: `Incorrect API key provided: ${KEY}` });
      const echoed = await rejectsWith(provider.chat(endpoint, request, AbortSignal.timeout(5000)), { status: 401 });
      assert.ok(!echoed.message.includes(KEY), echoed.message);
    });

    test('a stalled upstream with a timeout signal fails with code timeout', async () => {
      standIn.behave('stall');
      await rejectsWith(provider.chat(endpoint, request, AbortSignal.timeout(150)), { code: 'timeout', retryable: true });
      await rejectsWith(collect(provider.stream(endpoint, request, AbortSignal.timeout(150))), { code: 'timeout' });
    });

    test('a stream that stalls after its first chunks times out mid-stream', async () => {
      standIn.behave({ kind: 'stall', afterChunks: adapter.framesWithDeltas });
      const seen: StreamPart[] = [];
      await rejectsWith((async () => {
        for await (const p of provider.stream(endpoint, request, AbortSignal.timeout(300))) seen.push(p);
      })(), { code: 'timeout' });
      assert.ok(seen.some((p) => p.type === 'delta'));
    });

    test('a client abort while waiting fails with code aborted, not timeout', async () => {
      standIn.behave('stall');
      const controller = new AbortController();
      const call = provider.chat(endpoint, request, controller.signal);
      await standIn.waitForRequests(1);
      controller.abort();
      await rejectsWith(call, { code: 'aborted', retryable: false });
    });

    test('an already aborted signal fails before any request is sent', async () => {
      await rejectsWith(provider.chat(endpoint, request, AbortSignal.abort()), { code: 'aborted' });
      assert.equal(standIn.requests.length, 0);
    });

    test('a connection dropped mid-stream throws after the first deltas', async () => {
      standIn.behave({ kind: 'drop-mid-stream', afterChunks: adapter.framesWithDeltas });
      const seen: StreamPart[] = [];
      const err = await rejectsWith((async () => {
        for await (const p of provider.stream(endpoint, request, AbortSignal.timeout(5000))) seen.push(p);
      })(), { code: 'network' });
      assert.ok(seen.some((p) => p.type === 'delta'), 'deltas before the drop are delivered');
      assert.ok(!seen.some((p) => p.type === 'finish'));
      assert.ok(err.retryable);
    });

    test('a non-streaming answer cut off by a dropped connection is a network error', async () => {
      standIn.behave('drop-mid-stream');
      await rejectsWith(provider.chat(endpoint, request, AbortSignal.timeout(5000)), { code: 'network' });
    });

    test('a stream that ends cleanly without its terminal event is bad_response (truncated)', async () => {
      standIn.behave({ kind: 'truncate', afterChunks: adapter.framesWithDeltas });
      const err = await rejectsWith(collect(provider.stream(endpoint, request, AbortSignal.timeout(5000))), { code: 'bad_response', retryable: false });
      assert.match(err.message, /truncated/);
    });

    test('malformed JSON in a 2xx body or in a stream event is bad_response', async () => {
      standIn.behave('malformed');
      await rejectsWith(provider.chat(endpoint, request, AbortSignal.timeout(5000)), { code: 'bad_response' });
      await rejectsWith(collect(provider.stream(endpoint, request, AbortSignal.timeout(5000))), { code: 'bad_response' });
    });

    test('a trickling stream delivers deltas as they arrive', async () => {
      standIn.behave({ kind: 'trickle', intervalMs: 15 });
      const parts = await collect(provider.stream(endpoint, request, AbortSignal.timeout(5000)));
      assert.equal(parts.at(-1)?.type, 'finish');
    });

    test('stopping a stream early frees the connection for the next call', async () => {
      standIn.behave({ kind: 'trickle', intervalMs: 10 });
      for await (const part of provider.stream(endpoint, request, AbortSignal.timeout(5000))) {
        if (part.type === 'delta') break;
      }
      standIn.behave('ok');
      assert.equal((await provider.chat(endpoint, request, AbortSignal.timeout(5000))).content, expectedText);
    });

    test('sequential calls reuse one pooled keep-alive connection', async () => {
      const before = standIn.connectionCount();
      for (let i = 0; i < 5; i++) {
        await provider.chat(endpoint, request, AbortSignal.timeout(5000));
        await collect(provider.stream(endpoint, request, AbortSignal.timeout(5000)));
      }
      assert.ok(standIn.connectionCount() - before <= 1, `opened ${standIn.connectionCount() - before} connections for 10 calls`);
    });

    test('listModels returns the names the upstream lists', async () => {
      assert.deepEqual(await provider.listModels(endpoint, AbortSignal.timeout(5000)), adapter.models);
    });

    test('listModels maps upstream errors like any call', async () => {
      standIn.behave({ kind: 'error', status: 503 });
      await rejectsWith(provider.listModels(endpoint, AbortSignal.timeout(5000)), { code: 'http', status: 503, retryable: true });
    });

    test('a refused connection is a retryable network error', async () => {
      const gone = await startRawUpstream((_req, res) => res.end());
      await gone.close();
      const base = adapter.kind === 'openai' ? `${gone.url}/v1` : adapter.kind === 'gemini' ? `${gone.url}/v1beta` : gone.url;
      await rejectsWith(provider.chat({ ...endpoint, baseUrl: base }, request, AbortSignal.timeout(5000)), { code: 'network', retryable: true });
    });
  });
}
