// The OpenAI-compatible adapter's wire details: request shape, stream options, and the leniency
// and errors real compatible servers show (no [DONE], error objects mid-stream, refusals).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { UpstreamError } from '../../server/errors.ts';
import { OpenAIProvider } from '../../server/providers/openai.ts';
import type { StreamPart } from '../../server/providers/types.ts';
import { collect, startRawUpstream } from '../standins/common.ts';
import type { StandIn } from '../standins/common.ts';
import { startOpenAIStandIn } from '../standins/openai.ts';

const provider = new OpenAIProvider();

describe('OpenAI-compatible adapter request shape', () => {
  let standIn: StandIn;
  before(async () => (standIn = await startOpenAIStandIn({ apiKey: 'sk-test-shape-0001' })));
  after(() => standIn.close());

  test('chat posts model, messages and mapped sampling params with Bearer auth', async () => {
    const endpoint = { baseUrl: standIn.url, upstreamModel: 'gpt-4o-mini', apiKey: 'sk-test-shape-0001', headers: { 'x-team': 'blue' } };
    await provider.chat(endpoint, {
      messages: [{ role: 'system', content: 'sys' }, { role: 'user', content: 'hi' }],
      temperature: 0.2, maxTokens: 50, topP: 0.9, stop: ['END'],
    }, AbortSignal.timeout(5000));
    const req = standIn.requests.at(-1)!;
    assert.equal(req.path, '/v1/chat/completions');
    assert.equal(req.headers.authorization, 'Bearer sk-test-shape-0001');
    assert.equal(req.headers['x-team'], 'blue');
    assert.deepEqual(req.body, {
      model: 'gpt-4o-mini',
      messages: [{ role: 'system', content: 'sys' }, { role: 'user', content: 'hi' }],
      // o-series and gpt-5 accept only max_completion_tokens.
      temperature: 0.2, max_completion_tokens: 50, top_p: 0.9, stop: ['END'],
    });
  });

  test('unset params are left out, and stream asks for the final usage chunk', async () => {
    await collect(provider.stream({ baseUrl: standIn.url, upstreamModel: 'gpt-4o', apiKey: 'sk-test-shape-0001' }, { messages: [{ role: 'user', content: 'hi' }] }, AbortSignal.timeout(5000)));
    assert.deepEqual(standIn.requests.at(-1)!.body, {
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  test('a base URL with a trailing slash still reaches /chat/completions', async () => {
    await provider.chat({ baseUrl: `${standIn.url}/`, upstreamModel: 'gpt-4o', apiKey: 'sk-test-shape-0001' }, { messages: [{ role: 'user', content: 'x' }] }, AbortSignal.timeout(5000));
    assert.equal(standIn.requests.at(-1)!.path, '/v1/chat/completions');
  });
});

describe('OpenAI-compatible adapter with quirky servers', () => {
  let server: { url: string; close(): Promise<void> };
  let reply: (path: string) => { status?: number; type?: string; body: string };
  before(async () => {
    server = await startRawUpstream((req, res) => {
      req.resume();
      req.on('end', () => {
        const r = reply(req.url ?? '');
        res.writeHead(r.status ?? 200, { 'content-type': r.type ?? 'text/event-stream' });
        res.end(r.body);
      });
    });
  });
  after(() => server.close());
  const endpoint = () => ({ baseUrl: server.url, upstreamModel: 'local' });

  test('a stream with a finish_reason but no [DONE] and no usage still finishes', async () => {
    reply = () => ({
      body: 'data: {"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n' +
        'data: {"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}\n\n',
    });
    const parts = await collect(provider.stream(endpoint(), { messages: [{ role: 'user', content: 'x' }] }, AbortSignal.timeout(5000)));
    assert.deepEqual(parts, [{ type: 'delta', text: 'hi' }, { type: 'finish', finishReason: 'length' }]);
  });

  test('an error object sent mid-stream is thrown as an upstream http error', async () => {
    reply = () => ({
      body: 'data: {"choices":[{"index":0,"delta":{"content":"par"},"finish_reason":null}]}\n\n' +
        'data: {"error":{"message":"The server had an error while processing your request.","type":"server_error"}}\n\n',
    });
    await assert.rejects(collect(provider.stream(endpoint(), { messages: [{ role: 'user', content: 'x' }] }, AbortSignal.timeout(5000))), (err: unknown) => {
      assert.ok(err instanceof UpstreamError);
      assert.equal(err.code, 'http');
      assert.match(err.message, /server had an error/);
      return true;
    });
  });

  test('a response without usage gets a chars/4 estimate, and a refusal maps to content_filter', async () => {
    reply = () => ({
      type: 'application/json',
      body: JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: null, refusal: 'I cannot help with that.' }, finish_reason: 'stop' }] }),
    });
    const result = await provider.chat(endpoint(), { messages: [{ role: 'user', content: '12345678' }] }, AbortSignal.timeout(5000));
    assert.equal(result.content, '');
    assert.equal(result.finishReason, 'content_filter');
    assert.deepEqual(result.usage, { inputTokens: 2, outputTokens: 0 });
  });

  test('a 2xx answer without choices is bad_response', async () => {
    reply = () => ({ type: 'application/json', body: '{"object":"chat.completion"}' });
    await assert.rejects(provider.chat(endpoint(), { messages: [{ role: 'user', content: 'x' }] }, AbortSignal.timeout(5000)), { code: 'bad_response' });
  });

  test('a non-JSON error page keeps its status and a short excerpt', async () => {
    reply = () => ({ status: 502, type: 'text/html', body: '<html>Bad Gateway</html>' });
    await assert.rejects(provider.chat(endpoint(), { messages: [{ role: 'user', content: 'x' }] }, AbortSignal.timeout(5000)), (err: unknown) => {
      assert.ok(err instanceof UpstreamError);
      assert.equal(err.status, 502);
      assert.equal(err.retryable, true);
      assert.match(err.message, /Bad Gateway/);
      return true;
    });
  });
});
