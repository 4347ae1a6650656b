// The official openai npm client, unchanged, against Switchyard in front of each provider kind.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startOpenAIStandIn } from '../standins/openai.ts';
import { startAnthropicStandIn } from '../standins/anthropic.ts';
import { startOllamaStandIn } from '../standins/ollama.ts';
import { startGeminiStandIn } from '../standins/gemini.ts';
import type { StandIn } from '../standins/common.ts';
import { startGateway, model, type TestGateway } from '../helpers/gateway.ts';

describe('official openai client through Switchyard', () => {
  const standins: Record<string, StandIn> = {};
  let gw: TestGateway;
  let client: OpenAI;

  before(async () => {
    standins.openai = await startOpenAIStandIn({ text: 'answer from the openai stand-in' });
    standins.anthropic = await startAnthropicStandIn({ text: 'answer from the anthropic stand-in' });
    standins.ollama = await startOllamaStandIn({ text: 'answer from the ollama stand-in' });
    standins.gemini = await startGeminiStandIn({ text: 'answer from the gemini stand-in' });
    gw = await startGateway({
      models: [
        model('m-openai', 'openai', standins.openai.url),
        model('m-anthropic', 'anthropic', standins.anthropic.url),
        model('m-ollama', 'ollama', standins.ollama.url),
        model('m-gemini', 'gemini', standins.gemini.url),
      ],
      env: { TEST_KEY: 'test-key-abcdef' },
    });
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    for (const s of Object.values(standins)) await s.close();
  });

  for (const kind of ['openai', 'anthropic', 'ollama', 'gemini']) {
    test(`chat.completions.create reaches the ${kind} upstream and maps the answer back`, async () => {
      const res = await client.chat.completions.create({ model: `m-${kind}`, messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: `hello ${kind}` }], max_tokens: 50 });
      assert.equal(res.object, 'chat.completion');
      assert.equal(res.model, `m-${kind}`);
      assert.equal(res.choices[0].message.content, `answer from the ${kind} stand-in`);
      assert.equal(res.choices[0].finish_reason, 'stop');
      assert.ok(res.usage && res.usage.completion_tokens > 0);
      const upstream = standins[kind].requests.at(-1)!;
      assert.match(JSON.stringify(upstream.body), new RegExp(`hello ${kind}`));
      assert.match(JSON.stringify(upstream.body), /be brief/);
    });

    test(`streaming through the client from the ${kind} upstream yields the whole answer`, async () => {
      const stream = await client.chat.completions.create({ model: `m-${kind}`, messages: [{ role: 'user', content: `stream ${kind}` }], stream: true, stream_options: { include_usage: true } });
      let text = '';
      let finish: string | null = null;
      let usage: OpenAI.CompletionUsage | undefined;
      let chunks = 0;
      for await (const chunk of stream) {
        chunks++;
        if (chunk.usage) usage = chunk.usage;
        const c = chunk.choices[0];
        if (!c) continue;
        text += c.delta.content ?? '';
        if (c.finish_reason) finish = c.finish_reason;
      }
      assert.equal(text, `answer from the ${kind} stand-in`);
      assert.equal(finish, 'stop');
      assert.ok(chunks > 2, 'streamed in several chunks');
      assert.ok(usage && usage.completion_tokens > 0);
    });
  }

  test('model "auto" lets the router choose and the answer names the model used', async () => {
    const res = (await client.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: 'who answers?' }] })) as OpenAI.ChatCompletion & { _actual_model_used: string; _routing: { method: string } };
    assert.ok(['m-openai', 'm-anthropic', 'm-ollama', 'm-gemini'].includes(res._actual_model_used));
    assert.equal(res.model, res._actual_model_used);
    assert.ok(res._routing.method);
  });

  test('models.list shows auto and every configured model', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids.sort(), ['auto', 'm-anthropic', 'm-gemini', 'm-ollama', 'm-openai']);
  });

  test('an unknown model is a 404 the client raises as NotFoundError', async () => {
    await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => e instanceof OpenAI.NotFoundError && /no-such-model/.test(e.message));
  });

  test('an upstream failing mid-stream makes the client throw instead of hanging', async () => {
    standins.openai.enqueue({ kind: 'drop-mid-stream', afterChunks: 2, text: 'a b c d e f g h' });
    const stream = await client.chat.completions.create({ model: 'm-openai', messages: [{ role: 'user', content: 'will drop' }], stream: true });
    await assert.rejects(async () => {
      for await (const _ of stream) {
        /* drain */
      }
    }, /upstream stream failed/);
  });
});
