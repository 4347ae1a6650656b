// The Anthropic adapter's wire details: system prompt placement, required headers and
// max_tokens, parameter names, and the in-stream error event.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { UpstreamError } from '../../server/errors.ts';
import { AnthropicProvider, defaultMaxTokens } from '../../server/providers/anthropic.ts';
import type { StreamPart } from '../../server/providers/types.ts';
import { startAnthropicStandIn } from '../standins/anthropic.ts';
import { collect, startRawUpstream } from '../standins/common.ts';
import type { StandIn } from '../standins/common.ts';

const provider = new AnthropicProvider();

describe('Anthropic adapter request shape', () => {
  let standIn: StandIn;
  before(async () => (standIn = await startAnthropicStandIn()));
  after(() => standIn.close());

  test('system messages move to the top-level system field, which the API requires', async () => {
    const endpoint = { baseUrl: standIn.url, upstreamModel: 'claude-haiku-4-5', apiKey: 'sk-ant-test-0001' };
    const result = await provider.chat(endpoint, {
      messages: [
        { role: 'system', content: 'Be terse.' },
        { role: 'system', content: 'Use French.' },
        { role: 'user', content: 'Hello' },
        { role: 'assistant', content: 'Bonjour' },
        { role: 'user', content: 'Again' },
      ],
    }, AbortSignal.timeout(5000));
    assert.equal(result.content, 'reply from claude-haiku-4-5: Again');
    const req = standIn.requests.at(-1)!;
    assert.equal(req.path, '/v1/messages');
    assert.equal(req.headers['x-api-key'], 'sk-ant-test-0001');
    assert.equal(req.headers['anthropic-version'], '2023-06-01');
    assert.equal(req.headers.authorization, undefined);
    assert.deepEqual(req.body, {
      model: 'claude-haiku-4-5',
      max_tokens: defaultMaxTokens(endpoint),
      system: 'Be terse.\n\nUse French.',
      messages: [
        { role: 'user', content: 'Hello' },
        { role: 'assistant', content: 'Bonjour' },
        { role: 'user', content: 'Again' },
      ],
    });
  });

  test('sampling params use Anthropic names and a client max_tokens wins over the default', async () => {
    const endpoint = { baseUrl: standIn.url, upstreamModel: 'claude-sonnet-4-5', apiKey: 'sk-ant-test-0001' };
    await collect(provider.stream(endpoint, { messages: [{ role: 'user', content: 'hi' }], maxTokens: 77, temperature: 0.5, topP: 0.8, stop: ['###'] }, AbortSignal.timeout(5000)));
    assert.deepEqual(standIn.requests.at(-1)!.body, {
      model: 'claude-sonnet-4-5',
      max_tokens: 77,
      messages: [{ role: 'user', content: 'hi' }],
      temperature: 0.5,
      top_p: 0.8,
      stop_sequences: ['###'],
      stream: true,
    });
  });

  test('a missing key gets the real 401 authentication_error, not retryable', async () => {
    await assert.rejects(provider.chat({ baseUrl: standIn.url, upstreamModel: 'claude-haiku-4-5' }, { messages: [{ role: 'user', content: 'hi' }] }, AbortSignal.timeout(5000)), (err: unknown) => {
      assert.ok(err instanceof UpstreamError);
      assert.equal(err.status, 401);
      assert.equal(err.retryable, false);
      assert.match(err.message, /authentication_error: x-api-key header is required/);
      return true;
    });
  });

  test('a 529 overloaded answer is retryable', async () => {
    standIn.enqueue({ kind: 'error', status: 529 });
    await assert.rejects(provider.chat({ baseUrl: standIn.url, upstreamModel: 'claude-haiku-4-5', apiKey: 'k-1' }, { messages: [{ role: 'user', content: 'hi' }] }, AbortSignal.timeout(5000)), {
      status: 529, retryable: true, code: 'http',
    });
  });
});

describe('Anthropic adapter stream events', () => {
  let server: { url: string; close(): Promise<void> };
  let body = '';
  before(async () => {
    server = await startRawUpstream((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(body);
      });
    });
  });
  after(() => server.close());
  const sse = (name: string, data: unknown) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;

  test('an error event mid-stream is thrown with the status its type implies', async () => {
    body = sse('message_start', { type: 'message_start', message: { usage: { input_tokens: 3, output_tokens: 1 } } }) +
      sse('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hel' } }) +
      sse('error', { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } });
    const seen: StreamPart[] = [];
    await assert.rejects((async () => {
      for await (const p of provider.stream({ baseUrl: server.url, upstreamModel: 'm', apiKey: 'k-1' }, { messages: [{ role: 'user', content: 'x' }] }, AbortSignal.timeout(5000))) seen.push(p);
    })(), { code: 'http', status: 529 });
    assert.deepEqual(seen, [{ type: 'usage', usage: { inputTokens: 3, outputTokens: 1 } }, { type: 'delta', text: 'Hel' }]);
  });

  test('usage combines input tokens from message_start with the final output count, thinking is reasoning, and unknown events are ignored', async () => {
    body = sse('message_start', { type: 'message_start', message: { usage: { input_tokens: 11, output_tokens: 1 } } }) +
      sse('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '' } }) +
      sse('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'hmm' } }) +
      sse('some_future_event', { type: 'some_future_event' }) +
      sse('content_block_delta', { type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text: 'Answer' } }) +
      sse('message_delta', { type: 'message_delta', delta: { stop_reason: 'stop_sequence', stop_sequence: '###' }, usage: { output_tokens: 42 } }) +
      sse('message_stop', { type: 'message_stop' });
    const parts = await collect(provider.stream({ baseUrl: server.url, upstreamModel: 'm', apiKey: 'k-1' }, { messages: [{ role: 'user', content: 'x' }] }, AbortSignal.timeout(5000)));
    assert.deepEqual(parts, [
      { type: 'usage', usage: { inputTokens: 11, outputTokens: 1 } },
      { type: 'reasoning', text: 'hmm' },
      { type: 'delta', text: 'Answer' },
      { type: 'finish', finishReason: 'stop', usage: { inputTokens: 11, outputTokens: 42 } },
    ]);
  });
});
