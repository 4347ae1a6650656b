// /v1/embeddings in OpenAI's wire format over each provider's embeddings API (OpenAI, Ollama
// /api/embed, Gemini embedContent / batchEmbedContents) and the built-in embedder in demo mode.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { hashedEmbedding } from '../standins/ollama.ts';
import type { StandIn } from '../standins/common.ts';
import { gatewayOver, startGateway, model, fixedRouter, postJson, type TestGateway } from '../helpers/gateway.ts';
import { BuiltinEmbedder } from '../../router/embedder.ts';

const close = (a: number[], b: number[]) => a.length === b.length && a.every((x, i) => Math.abs(x - b[i]!) < 1e-6);

describe('/v1/embeddings across providers', () => {
  const t = gatewayOver(['openai', 'ollama', 'gemini'], (url) => ({
    models: [
      model('chat', 'openai', url.openai),
      model('te3', 'openai', url.openai, { kind: 'embedding', upstreamModel: 'text-embedding-3-small', dimensions: 1536, aliases: ['text-embedding-3-small'] }),
      model('ada', 'openai', url.openai, { kind: 'embedding', upstreamModel: 'text-embedding-ada-002' }),
      model('nomic', 'ollama', url.ollama, { kind: 'embedding', upstreamModel: 'nomic-embed-text' }),
      model('gem-embed', 'gemini', url.gemini, { kind: 'embedding', upstreamModel: 'text-embedding-004' }),
    ],
    env: { TEST_KEY: 'test-key-abcdef' },
    router: fixedRouter(['chat']),
  }));
  let oa: StandIn;
  let ol: StandIn;
  let ge: StandIn;
  let gw: TestGateway;
  let client: OpenAI;
  before(() => {
    ({ up: { openai: oa, ollama: ol, gemini: ge }, gw } = t);
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });

  test('the openai client (base64 by default) gets OpenAI vectors; the upstream is asked for floats', async () => {
    const r = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['hello world', 'second text'] });
    assert.equal(r.object, 'list');
    assert.equal(r.data.length, 2);
    assert.equal(r.data[0]!.embedding.length, 1536);
    assert.ok(close(r.data[1]!.embedding, Array.from(new Float32Array(hashedEmbedding('second text', 1536)))));
    assert.ok(r.usage.prompt_tokens > 0);
    const sent = oa.requests[0]!;
    assert.equal(sent.path, '/v1/embeddings');
    assert.deepEqual(sent.body, { model: 'text-embedding-3-small', input: ['hello world', 'second text'], encoding_format: 'float' });
  });

  test('encoding_format float answers number arrays; base64 answers little-endian float32', async () => {
    const f = await postJson(`${gw.url}/v1/embeddings`, { model: 'te3', input: 'abc', encoding_format: 'float' });
    assert.equal(f.status, 200);
    assert.ok(Array.isArray(f.body.data[0].embedding));
    const b = await postJson(`${gw.url}/v1/embeddings`, { model: 'te3', input: 'abc', encoding_format: 'base64' });
    const buf = Buffer.from(b.body.data[0].embedding, 'base64');
    const decoded = Array.from({ length: buf.length / 4 }, (_, i) => buf.readFloatLE(i * 4));
    assert.ok(close(decoded, Array.from(new Float32Array(f.body.data[0].embedding))));
    assert.equal(b.body._actual_model_used, 'te3');
  });

  test('dimensions reaches each upstream under its own name; a model that cannot shorten refuses it (upstream 400)', async () => {
    const o = await client.embeddings.create({ model: 'te3', input: 'x y', dimensions: 256 });
    assert.equal(o.data[0]!.embedding.length, 256);
    assert.equal((oa.requests[0]!.body as any).dimensions, 256);
    const l = await client.embeddings.create({ model: 'nomic', input: 'x y', dimensions: 64 });
    assert.equal(l.data[0]!.embedding.length, 64);
    assert.deepEqual(ol.requests[0]!.body, { model: 'nomic-embed-text', input: ['x y'], dimensions: 64 });
    const g = await client.embeddings.create({ model: 'gem-embed', input: 'x y', dimensions: 128 });
    assert.equal(g.data[0]!.embedding.length, 128);
    assert.equal((ge.requests[0]!.body as any).outputDimensionality, 128);
    await assert.rejects(client.embeddings.create({ model: 'ada', input: 'x', dimensions: 8 }), (e: any) => e.status === 400 && /does not support specifying dimensions/.test(e.message));
  });

  test('Ollama embeddings go to /api/embed', async () => {
    const r = await client.embeddings.create({ model: 'nomic', input: ['one', 'two', 'three'], encoding_format: 'float' });
    assert.equal(r.data.length, 3);
    assert.equal(ol.requests[0]!.path, '/api/embed');
    assert.ok(close(r.data[2]!.embedding, hashedEmbedding('three', 32)));
    assert.equal(r.usage.prompt_tokens, 4); // the upstream's prompt_eval_count
  });

  test('Gemini: one input through embedContent, several through batchEmbedContents, in order', async () => {
    const one = await client.embeddings.create({ model: 'gem-embed', input: 'solo', encoding_format: 'float' });
    assert.equal(one.data[0]!.embedding.length, 768);
    assert.match(ge.requests[0]!.path, /\/v1beta\/models\/text-embedding-004:embedContent$/);
    assert.deepEqual(ge.requests[0]!.body, { content: { parts: [{ text: 'solo' }] } });
    assert.equal(ge.requests[0]!.headers['x-goog-api-key'], 'test-key-abcdef');
    const many = await client.embeddings.create({ model: 'gem-embed', input: ['a b', 'c d'], encoding_format: 'float' });
    assert.match(ge.requests[1]!.path, /:batchEmbedContents$/);
    assert.equal((ge.requests[1]!.body as any).requests[1].model, 'models/text-embedding-004');
    assert.ok(close(many.data[1]!.embedding, hashedEmbedding('c d', 768)));
  });

  test('what a format cannot carry is refused by name: token arrays and unknown fields outside OpenAI', async () => {
    const tokens = await postJson(`${gw.url}/v1/embeddings`, { model: 'nomic', input: [[1, 2, 3]] });
    assert.equal(tokens.status, 400);
    assert.equal(tokens.body.error.code, 'unsupported_parameter');
    assert.match(tokens.body.error.message, /token arrays/);
    const extra = await postJson(`${gw.url}/v1/embeddings`, { model: 'gem-embed', input: 'x', task_type: 'RETRIEVAL_QUERY' });
    assert.equal(extra.status, 400);
    assert.equal(extra.body.error.param, 'task_type');
    // OpenAI takes token arrays and its own extra fields as they are.
    const ok = await postJson(`${gw.url}/v1/embeddings`, { model: 'te3', input: [1, 2, 3], encoding_format: 'float' });
    assert.equal(ok.status, 200);
    assert.deepEqual((oa.requests.at(-1)!.body as any).input, [[1, 2, 3]]);
  });

  test('bad bodies and wrong models are clear 4xx: empty input, chat model, unknown model, embedding model on chat', async () => {
    const empty = await postJson(`${gw.url}/v1/embeddings`, { model: 'te3', input: '' });
    assert.equal(empty.status, 400);
    assert.match(empty.body.error.message, /input/);
    const bad = await postJson(`${gw.url}/v1/embeddings`, { model: 'te3', input: 'x', encoding_format: 'int8' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.param, 'encoding_format');
    const chat = await postJson(`${gw.url}/v1/embeddings`, { model: 'chat', input: 'x' });
    assert.equal(chat.status, 400);
    assert.equal(chat.body.error.code, 'model_not_embedding');
    assert.equal((await postJson(`${gw.url}/v1/embeddings`, { model: 'nope', input: 'x' })).status, 404);
    const asChat = await postJson(`${gw.url}/v1/chat/completions`, { model: 'te3', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(asChat.status, 400);
    assert.equal(asChat.body.error.code, 'model_not_chat');
    assert.equal(gw.services.registry.candidates().some((c) => c.id === 'te3'), false);
  });

  test('an upstream failure keeps its meaning: 429 with Retry-After', async () => {
    oa.behave({ kind: 'error', status: 429, retryAfter: '30' });
    const r = await postJson(`${gw.url}/v1/embeddings`, { model: 'te3', input: 'x' });
    assert.equal(r.status, 429);
    assert.equal(r.headers.get('retry-after'), '30');
  });
});

describe('/v1/embeddings in demo mode', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway();
  });
  after(async () => {
    await gw.close();
  });

  test('demo-embed is the built-in embedder, listed on /v1/models, with dimensions', async () => {
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.ok(ids.includes('demo-embed'));
    const r = await client.embeddings.create({ model: 'demo-embed', input: ['路由 routing', 'hello'] });
    const expected = await new BuiltinEmbedder(256).embed(['路由 routing']);
    assert.ok(close(r.data[0]!.embedding, Array.from(expected[0]!)));
    const small = await client.embeddings.create({ model: 'demo-embed', input: 'hello', dimensions: 64 });
    assert.equal(small.data[0]!.embedding.length, 64);
    const tooSmall = await postJson(`${gw.url}/v1/embeddings`, { model: 'demo-embed', input: 'x', dimensions: 4 });
    assert.equal(tooSmall.status, 400);
    assert.equal(tooSmall.body.error.code, 'unsupported_parameter');
  });
});
