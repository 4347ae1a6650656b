// Embedders: the builtin hashed model, Ollama over a loopback stand-in, transformers.js on a tiny
// local ONNX fixture, and createEmbedder's fallback to builtin.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BuiltinEmbedder, createEmbedder, OllamaEmbedder, TransformersEmbedder } from '../../router/embedder.ts';
import { cosine, dot, l2normalize, norm } from '../../router/vector.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const FIXTURE_ROOT = path.join(here, '..', 'fixtures', 'tiny-embedder');
const FIXTURE_MODEL = 'switchyard/tiny-embedder';

function assertUnit(v: Float32Array): void {
  assert.ok(Math.abs(norm(v) - 1) < 1e-5, `norm was ${norm(v)}`);
}

describe('vector helpers', () => {
  test('dot, cosine and l2normalize agree on small vectors', () => {
    assert.equal(dot([1, 2, 3], [4, 5, 6]), 32);
    assert.ok(Math.abs(cosine([1, 0], [1, 1]) - Math.SQRT1_2) < 1e-12);
    assert.equal(cosine([0, 0], [1, 1]), 0);
    const v = l2normalize(new Float32Array([3, 4]));
    assert.ok(Math.abs(v[0]! - 0.6) < 1e-6 && Math.abs(v[1]! - 0.8) < 1e-6);
    assert.deepEqual(Array.from(l2normalize(new Float32Array([0, 0]))), [0, 0]);
  });
});

describe('BuiltinEmbedder', () => {
  const e = new BuiltinEmbedder();

  test('is deterministic and returns unit vectors of the configured size', async () => {
    const [a, b] = await e.embed(['Reverse a linked list', 'Reverse a linked list']);
    assert.equal(a!.length, 256);
    assertUnit(a!);
    assert.deepEqual(a, b);
    assert.deepEqual(await new BuiltinEmbedder().embed(['Reverse a linked list']), [a]);
    assert.equal(new BuiltinEmbedder(64).dim, 64);
    assert.equal((await new BuiltinEmbedder(100).embed(['odd size']))[0]!.length, 100);
  });

  test('places paraphrases closer than unrelated texts, in English and Chinese', async () => {
    const [a, b, c, d, f, g] = await e.embed([
      'How do I reverse a linked list in Python?', 'python code to reverse a linked list',
      'What is the best recipe for chocolate cake?',
      '如何用Python反转链表', '反转链表的Python代码', '巧克力蛋糕怎么做',
    ]);
    assert.ok(dot(a!, b!) > dot(a!, c!) + 0.3, `en: ${dot(a!, b!)} vs ${dot(a!, c!)}`);
    assert.ok(dot(d!, f!) > dot(d!, g!) + 0.3, `zh: ${dot(d!, f!)} vs ${dot(d!, g!)}`);
    for (const v of [c, d, g]) assertUnit(v!);
  });

  test('tolerates typos and inflections through sub-word grams', async () => {
    const [a, b, c] = await e.embed(['optimizing database queries', 'optimising databse query', 'baking sourdough bread']);
    assert.ok(dot(a!, b!) > dot(a!, c!) + 0.2);
  });

  test('handles texts with thousands of distinct features the same way every time', () => {
    const long = Array.from({ length: 3000 }, (_, i) => `token${i}`).join(' ');
    const fresh = new BuiltinEmbedder();
    const first = fresh.embedOne(long);
    assertUnit(first);
    assert.deepEqual(fresh.embedOne(long), first);
    assert.deepEqual(e.embedOne(long), first);
    assert.deepEqual(fresh.embedOne('short text'), e.embedOne('short text'));
  });

  test('gives empty and punctuation-only text a unit vector too', async () => {
    const [a, b] = await e.embed(['', '?!...']);
    assertUnit(a!);
    assert.deepEqual(a, b);
  });

});

/** Minimal Ollama stand-in: POST /api/embed {model, input} -> {model, embeddings}. */
async function startOllamaStandIn(dim: number): Promise<{ url: string; requests: Array<{ model: string; input: string[] }>; close(): Promise<void> }> {
  const requests: Array<{ model: string; input: string[] }> = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => { body += chunk.toString(); });
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/api/embed') {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
        return;
      }
      const parsed = JSON.parse(body) as { model: string; input: string | string[] };
      const input = Array.isArray(parsed.input) ? parsed.input : [parsed.input];
      requests.push({ model: parsed.model, input });
      // Deterministic, deliberately unnormalised vectors derived from the text.
      const embeddings = input.map((t) => Array.from({ length: dim }, (_, i) => ((t.charCodeAt(i % t.length) || 1) % 7) + i));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ model: parsed.model, embeddings }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A port with nothing listening: bind, note the port, close. */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

describe('OllamaEmbedder', () => {
  let standIn: Awaited<ReturnType<typeof startOllamaStandIn>>;
  after(async () => { await standIn?.close(); });

  test('embeds batches through /api/embed and normalises the vectors', async () => {
    standIn = await startOllamaStandIn(12);
    const e = await OllamaEmbedder.create({ host: standIn.url, model: 'tiny-embed' });
    assert.equal(e.dim, 12);
    assert.equal(e.name, 'ollama:tiny-embed');
    const vs = await e.embed(['first text', 'second text']);
    assert.equal(vs.length, 2);
    for (const v of vs) { assert.equal(v.length, 12); assertUnit(v); }
    const last = standIn.requests.at(-1)!;
    assert.deepEqual(last, { model: 'tiny-embed', input: ['first text', 'second text'] });
  });

  test('createEmbedder uses a reachable Ollama without fallback', async () => {
    const logs: string[] = [];
    const { embedder, fallbackReason } = await createEmbedder({
      kind: 'ollama', ollamaHost: standIn.url, modelId: 'tiny-embed', log: (level, msg) => logs.push(`${level}:${msg}`),
    });
    assert.equal(fallbackReason, null);
    assert.equal(embedder.name, 'ollama:tiny-embed');
    assert.deepEqual(logs, ['info:embedder ready']);
  });
});

describe('TransformersEmbedder on the tiny local fixture', () => {
  const load = (quantized?: boolean) => TransformersEmbedder.create({
    modelId: FIXTURE_MODEL, localModelPath: FIXTURE_ROOT, allowRemote: false, quantized,
  });

  test('loads from the local folder and returns deterministic unit vectors of the model size', async () => {
    const e = await load();
    assert.equal(e.dim, 32);
    assert.equal(e.name, `transformers:${FIXTURE_MODEL}`);
    const [a, b, c] = await e.embed(['how to reverse a linked list', 'how to reverse a linked list', '如何反转链表']);
    for (const v of [a, b, c]) { assert.equal(v!.length, 32); assertUnit(v!); }
    assert.deepEqual(a, b);
    assert.ok(dot(a!, c!) < 0.999, 'different texts give different vectors');
    assert.deepEqual(await e.embed([]), []);
  });

  test('padding in a batch does not change a text\'s vector', async () => {
    const e = await load(false);
    const [alone] = await e.embed(['hello']);
    const [batched] = await e.embed(['hello', 'a much longer sentence about chocolate cake and bread']);
    for (let i = 0; i < 32; i++) assert.ok(Math.abs(alone![i]! - batched![i]!) < 1e-5);
  });

  test('createEmbedder picks it up without fallback', async () => {
    const { embedder, fallbackReason } = await createEmbedder({
      kind: 'transformers', modelId: FIXTURE_MODEL, localModelPath: FIXTURE_ROOT, allowRemote: false,
    });
    assert.equal(fallbackReason, null);
    assert.equal(embedder.dim, 32);
  });
});

describe('createEmbedder fallback', () => {
  test('returns the builtin embedder by default', async () => {
    const { embedder, fallbackReason } = await createEmbedder({ kind: 'builtin' });
    assert.equal(embedder.name, 'builtin-hash-256');
    assert.equal(fallbackReason, null);
  });

  test('falls back to builtin with a reason when Ollama is unreachable', async () => {
    const port = await closedPort();
    const logs: Array<{ level: string; msg: string }> = [];
    const { embedder, fallbackReason } = await createEmbedder({
      kind: 'ollama', ollamaHost: `http://127.0.0.1:${port}`, timeoutMs: 2000, log: (level, msg) => logs.push({ level, msg }),
    });
    assert.ok(embedder instanceof BuiltinEmbedder);
    assert.match(fallbackReason ?? '', /^ollama embedder unavailable: .*ECONNREFUSED/);
    assert.deepEqual(logs, [{ level: 'warn', msg: 'embedder fallback to builtin' }]);
  });

  test('falls back to builtin when Ollama accepts the connection but never answers', async () => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((socket) => { sockets.add(socket); });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    try {
      const { embedder, fallbackReason } = await createEmbedder({ kind: 'ollama', ollamaHost: `http://127.0.0.1:${port}`, timeoutMs: 150 });
      assert.ok(embedder instanceof BuiltinEmbedder);
      assert.match(fallbackReason ?? '', /^ollama embedder unavailable: .*(timeout|abort)/i);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  test('falls back to builtin with a reason when the transformers model folder is missing', async () => {
    const { embedder, fallbackReason } = await createEmbedder({
      kind: 'transformers', modelId: 'nobody/missing-model', localModelPath: path.join(here, 'no-such-dir'),
      allowRemote: false, builtinDim: 128,
    });
    assert.equal(embedder.name, 'builtin-hash-128');
    assert.match(fallbackReason ?? '', /^transformers embedder unavailable: /);
  });
});
