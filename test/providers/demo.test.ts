// The built-in demo provider: labelled, deterministic, prompt-dependent answers, word-chunk
// streaming, limits, the fail/slow triggers, and respect for the abort signal.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { UpstreamError } from '../../server/errors.ts';
import { DemoProvider, wordChunks } from '../../server/providers/demo.ts';
import type { ProviderRequest, StreamPart } from '../../server/providers/types.ts';
import { collect } from '../standins/common.ts';

const provider = new DemoProvider();
const endpoint = (model = 'demo-fast') => ({ baseUrl: 'demo://local', upstreamModel: model });
const ask = (content: string, extra: Partial<ProviderRequest> = {}): ProviderRequest => ({ messages: [{ role: 'user', content }], ...extra });

describe('demo provider', () => {
  test('every answer starts with the demo label naming the model', async () => {
    for (const model of ['demo-fast', 'demo-coder', 'demo-polyglot', 'demo-large']) {
      const result = await provider.chat(endpoint(model), ask('Tell me about tides'), AbortSignal.timeout(1000));
      assert.ok(result.content.startsWith(`[DEMO MODEL ${model}] `), result.content);
      assert.equal(result.upstreamModel, model);
      assert.equal(result.finishReason, 'stop');
    }
  });

  test('answers are deterministic and depend on the prompt', async () => {
    const a1 = await provider.chat(endpoint(), ask('Why is the sky blue?'), AbortSignal.timeout(1000));
    const a2 = await provider.chat(endpoint(), ask('Why is the sky blue?'), AbortSignal.timeout(1000));
    const b = await provider.chat(endpoint(), ask('How do volcanoes form?'), AbortSignal.timeout(1000));
    assert.equal(a1.content, a2.content);
    assert.notEqual(a1.content, b.content);
    assert.match(a1.content, /Why is the sky blue\?/);
  });

  test('code-like prompts get a code snippet, Chinese prompts a Chinese reply', async () => {
    const code = await provider.chat(endpoint('demo-coder'), ask('Write a python function to dedupe a list'), AbortSignal.timeout(1000));
    assert.match(code.content, /```python\ndef /);
    const sql = await provider.chat(endpoint('demo-coder'), ask('sql to find the latest orders'), AbortSignal.timeout(1000));
    assert.match(sql.content, /```sql\nSELECT/);
    const zh = await provider.chat(endpoint('demo-polyglot'), ask('请解释一下量子计算'), AbortSignal.timeout(1000));
    assert.match(zh.content, /^\[DEMO MODEL demo-polyglot\] 你的问题是/);
  });

  test('the large demo model answers at more length', async () => {
    const small = await provider.chat(endpoint('demo-fast'), ask('Explain compound interest'), AbortSignal.timeout(1000));
    const large = await provider.chat(endpoint('demo-large'), ask('Explain compound interest'), AbortSignal.timeout(1000));
    assert.ok(large.content.length > small.content.length);
  });

  test('usage is estimated as chars/4 for prompt and answer', async () => {
    const req: ProviderRequest = { messages: [{ role: 'system', content: 'abcd' }, { role: 'user', content: 'efghijkl' }] };
    const result = await provider.chat(endpoint(), req, AbortSignal.timeout(1000));
    assert.deepEqual(result.usage, { inputTokens: Math.ceil('abcd\nefghijkl'.length / 4), outputTokens: Math.ceil(result.content.length / 4) });
  });

  test('streaming yields the same answer in several word chunks, then one finish', async () => {
    const chat = await provider.chat(endpoint(), ask('What makes a good API?'), AbortSignal.timeout(1000));
    const parts = await collect(provider.stream(endpoint(), ask('What makes a good API?'), AbortSignal.timeout(1000)));
    const deltas = parts.flatMap((p) => (p.type === 'delta' ? [p.text] : []));
    assert.ok(deltas.length >= 4);
    assert.equal(deltas.join(''), chat.content);
    assert.deepEqual(parts.at(-1), { type: 'finish', finishReason: 'stop', usage: chat.usage });
  });

  test('max tokens cuts the answer (keeping the label) and reports length', async () => {
    const result = await provider.chat(endpoint(), ask('Describe the water cycle in detail'), AbortSignal.timeout(1000));
    const cut = await provider.chat(endpoint(), ask('Describe the water cycle in detail', { maxTokens: 10 }), AbortSignal.timeout(1000));
    assert.equal(cut.finishReason, 'length');
    assert.ok(cut.content.startsWith('[DEMO MODEL demo-fast] '));
    assert.ok(cut.content.length < result.content.length);
    assert.equal(cut.content.length, 40);
  });

  test('a stop sequence ends the answer at its first occurrence', async () => {
    const full = await provider.chat(endpoint(), ask('Explain caching'), AbortSignal.timeout(1000));
    const stopped = await provider.chat(endpoint(), ask('Explain caching', { stop: ['key'] }), AbortSignal.timeout(1000));
    assert.equal(stopped.content, full.content.slice(0, full.content.indexOf('key')));
    assert.equal(stopped.finishReason, 'stop');
  });

  test('[demo:fail] throws a retryable 503 UpstreamError', async () => {
    await assert.rejects(provider.chat(endpoint(), ask('please [demo:fail] now'), AbortSignal.timeout(1000)), (err: unknown) => {
      assert.ok(err instanceof UpstreamError);
      assert.equal(err.status, 503);
      assert.equal(err.retryable, true);
      assert.equal(err.provider, 'demo');
      return true;
    });
    await assert.rejects(collect(provider.stream(endpoint(), ask('[demo:fail]'), AbortSignal.timeout(1000))), { status: 503 });
  });

  test('[demo:slow] waits but gives up as soon as the signal fires', async () => {
    const started = Date.now();
    await assert.rejects(provider.chat(endpoint(), ask('[demo:slow] hi'), AbortSignal.timeout(50)), { code: 'timeout' });
    const controller = new AbortController();
    const call = provider.chat(endpoint(), ask('[demo:slow] hi'), controller.signal);
    controller.abort();
    await assert.rejects(call, { code: 'aborted' });
    assert.ok(Date.now() - started < 1500, 'did not wait the full 2 s');
  });

  test('a stream stops with aborted when the client goes away mid-answer', async () => {
    const controller = new AbortController();
    const seen: StreamPart[] = [];
    await assert.rejects((async () => {
      for await (const p of provider.stream(endpoint(), ask('Tell me a long story about ships'), controller.signal)) {
        seen.push(p);
        controller.abort();
      }
    })(), { code: 'aborted' });
    assert.equal(seen.length, 1);
  });

  test('listModels returns the four demo models, no network needed', async () => {
    assert.deepEqual(await provider.listModels(endpoint(), AbortSignal.timeout(1000)), ['demo-fast', 'demo-coder', 'demo-polyglot', 'demo-large']);
  });

  test('wordChunks splits on words and joins back exactly', () => {
    const text = '  one two three four five\nsix  seven';
    const chunks = wordChunks(text, 3);
    assert.equal(chunks.join(''), text);
    assert.equal(chunks.length, 3);
  });
});
