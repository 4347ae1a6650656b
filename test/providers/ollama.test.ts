// The Ollama adapter's wire details (stream flag, options, counts, error lines) and the Ollama
// stand-in's /api/embed, which other tests use as a deterministic embedding upstream.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { OllamaProvider } from '../../server/providers/ollama.ts';
import type { StreamPart } from '../../server/providers/types.ts';
import { collect, startRawUpstream } from '../standins/common.ts';
import type { StandIn } from '../standins/common.ts';
import { hashedEmbedding, startOllamaStandIn } from '../standins/ollama.ts';

const provider = new OllamaProvider();

describe('Ollama adapter request shape', () => {
  let standIn: StandIn;
  before(async () => (standIn = await startOllamaStandIn({ embedDim: 8 })));
  after(() => standIn.close());

  test('chat sends stream:false, the messages as-is, and sampling settings under options', async () => {
    const messages = [{ role: 'system' as const, content: 'sys' }, { role: 'user' as const, content: 'hi' }];
    await provider.chat({ baseUrl: standIn.url, upstreamModel: 'llama3' }, { messages, temperature: 0, maxTokens: 64, topP: 0.5, stop: ['\n\n'] }, AbortSignal.timeout(5000));
    const req = standIn.requests.at(-1)!;
    assert.equal(req.path, '/api/chat');
    assert.equal(req.headers.authorization, undefined);
    assert.deepEqual(req.body, { model: 'llama3', messages, stream: false, options: { temperature: 0, num_predict: 64, top_p: 0.5, stop: ['\n\n'] } });
  });

  test('stream sends stream:true and omits empty options', async () => {
    await collect(provider.stream({ baseUrl: standIn.url, upstreamModel: 'llama3' }, { messages: [{ role: 'user', content: 'hi' }] }, AbortSignal.timeout(5000)));
    assert.deepEqual(standIn.requests.at(-1)!.body, { model: 'llama3', messages: [{ role: 'user', content: 'hi' }], stream: true });
  });

  test('the stand-in /api/embed returns deterministic unit vectors of the configured size', async () => {
    const res = await request(`${standIn.url}/api/embed`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'nomic-embed-text', input: ['hello world', 'hello world', '你好'] }),
    });
    const body = (await res.body.json()) as { model: string; embeddings: number[][] };
    assert.equal(res.statusCode, 200);
    assert.equal(body.model, 'nomic-embed-text');
    assert.equal(body.embeddings.length, 3);
    assert.deepEqual(body.embeddings[0], body.embeddings[1]);
    assert.deepEqual(body.embeddings[0], hashedEmbedding('hello world', 8));
    for (const v of body.embeddings) {
      assert.equal(v.length, 8);
      assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-9);
    }
  });

  test('hashed embeddings of texts sharing words are closer than unrelated texts', () => {
    const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);
    const a = hashedEmbedding('sort a list in python', 64);
    const b = hashedEmbedding('sort a python list quickly', 64);
    const c = hashedEmbedding('天气怎么样', 64);
    assert.ok(dot(a, b) > dot(a, c));
  });
});

describe('Ollama adapter with raw NDJSON', () => {
  let server: { url: string; close(): Promise<void> };
  let lines: string[] = [];
  let status = 200;
  before(async () => {
    server = await startRawUpstream((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(status, { 'content-type': 'application/x-ndjson' });
        res.end(lines.join('\n'));
      });
    });
  });
  after(() => server.close());
  const endpoint = () => ({ baseUrl: server.url, upstreamModel: 'llama3' });

  test('an error line mid-stream is thrown as an upstream http error', async () => {
    status = 200;
    lines = [JSON.stringify({ message: { role: 'assistant', content: 'Hi' }, done: false }), JSON.stringify({ error: 'model runner has unexpectedly stopped' })];
    const seen: StreamPart[] = [];
    await assert.rejects((async () => {
      for await (const p of provider.stream(endpoint(), { messages: [{ role: 'user', content: 'x' }] }, AbortSignal.timeout(5000))) seen.push(p);
    })(), (err: Error & { code?: string }) => err.code === 'http' && /unexpectedly stopped/.test(err.message));
    assert.deepEqual(seen, [{ type: 'delta', text: 'Hi' }]);
  });

  test('a cached prompt without prompt_eval_count gets an estimated input count; done_reason length maps to length', async () => {
    status = 200;
    lines = [JSON.stringify({ model: 'llama3', message: { role: 'assistant', content: 'abcd' }, done: true, done_reason: 'length', eval_count: 5 })];
    const result = await provider.chat(endpoint(), { messages: [{ role: 'user', content: '12345678' }] }, AbortSignal.timeout(5000));
    assert.deepEqual(result, { content: 'abcd', finishReason: 'length', usage: { inputTokens: 2, outputTokens: 5 }, upstreamModel: 'llama3' });
  });

  test('a 404 for an unpulled model carries Ollama\'s error string and is not retryable', async () => {
    status = 404;
    lines = [JSON.stringify({ error: 'model "nope" not found, try pulling it first' })];
    await assert.rejects(provider.chat(endpoint(), { messages: [{ role: 'user', content: 'x' }] }, AbortSignal.timeout(5000)), (err: Error & { status?: number; retryable?: boolean }) => {
      assert.equal(err.status, 404);
      assert.equal(err.retryable, false);
      assert.match(err.message, /not found, try pulling it first/);
      return true;
    });
  });
});
