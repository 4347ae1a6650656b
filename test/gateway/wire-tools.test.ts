// Wire fidelity with the official clients: tools (plain, streamed, parallel, across formats),
// structured output with .parse(), images in each format's wire form, through stand-in upstreams.
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import { startOpenAIStandIn } from '../standins/openai.ts';
import { startAnthropicStandIn } from '../standins/anthropic.ts';
import type { StandIn } from '../standins/common.ts';
import { startGateway, model, type TestGateway } from '../helpers/gateway.ts';

const weatherTool: OpenAI.ChatCompletionTool = {
  type: 'function',
  function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};
const anthropicWeatherTool: Anthropic.Tool = { name: 'get_weather', description: 'Weather for a city', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };

const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

describe('tools, structured output and images through the official clients', () => {
  let oa: StandIn;
  let an: StandIn;
  let gw: TestGateway;
  let openai: OpenAI;
  let anthropic: Anthropic;
  const upstream = (id: string) => (id === 'gpt' ? oa : an);

  before(async () => {
    oa = await startOpenAIStandIn();
    an = await startAnthropicStandIn();
    gw = await startGateway({ models: [model('gpt', 'openai', oa.url), model('claude', 'anthropic', an.url)], env: { TEST_KEY: 'test-key-abcdef' } });
    openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    anthropic = new Anthropic({ baseURL: gw.url, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    await Promise.all([oa.close(), an.close()]);
  });
  beforeEach(() => {
    oa.reset();
    an.reset();
  });

  for (const target of ['gpt', 'claude']) {
    test(`openai client: a tool round trip (call, result, final answer) through ${target}`, async () => {
      upstream(target).enqueue({ kind: 'ok', toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: { city: 'Paris' } }] }, { kind: 'ok', text: 'It is sunny in Paris.' });
      const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Paris?' }];
      const first = await openai.chat.completions.create({ model: target, messages, tools: [weatherTool], tool_choice: 'auto' });
      const choice = first.choices[0]!;
      assert.equal(choice.finish_reason, 'tool_calls');
      const call = choice.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
      assert.equal(call.id, 'call_1');
      assert.equal(call.function.name, 'get_weather');
      assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
      messages.push(choice.message, { role: 'tool', tool_call_id: call.id, content: '{"sky":"clear"}' });
      const second = await openai.chat.completions.create({ model: target, messages, tools: [weatherTool] });
      assert.equal(second.choices[0]!.message.content, 'It is sunny in Paris.');
      assert.equal(second.choices[0]!.finish_reason, 'stop');

      const [req1, req2] = upstream(target).requests.map((r) => r.body as Record<string, any>);
      if (target === 'gpt') {
        assert.deepEqual(req1.tools, [weatherTool]);
        assert.equal(req1.tool_choice, 'auto');
        assert.deepEqual(req2.messages.at(-2).tool_calls, [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }]);
        assert.deepEqual(req2.messages.at(-1), { role: 'tool', tool_call_id: 'call_1', content: '{"sky":"clear"}' });
      } else {
        assert.deepEqual(req1.tools, [anthropicWeatherTool]);
        assert.deepEqual(req1.tool_choice, { type: 'auto' });
        assert.deepEqual(req2.messages.at(-2), { role: 'assistant', content: [{ type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Paris' } }] });
        assert.deepEqual(req2.messages.at(-1), { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_1', content: '{"sky":"clear"}' }] });
      }
    });

    test(`openai client: streamed parallel tool calls through ${target} accumulate into complete calls`, async () => {
      upstream(target).enqueue({ kind: 'ok', toolCalls: [{ id: 'call_a', name: 'get_weather', arguments: { city: 'Paris' } }, { id: 'call_b', name: 'get_weather', arguments: { city: 'Rome' } }] });
      const stream = openai.chat.completions.stream({ model: target, messages: [{ role: 'user', content: 'Paris and Rome?' }], tools: [weatherTool], parallel_tool_calls: true, stream_options: { include_usage: true } });
      const done = await stream.finalChatCompletion();
      const calls = done.choices[0]!.message.tool_calls! as OpenAI.ChatCompletionMessageFunctionToolCall[];
      assert.equal(done.choices[0]!.finish_reason, 'tool_calls');
      assert.deepEqual(calls.map((c) => [c.id, c.function.name, JSON.parse(c.function.arguments)]), [['call_a', 'get_weather', { city: 'Paris' }], ['call_b', 'get_weather', { city: 'Rome' }]]);
      assert.ok(done.usage && done.usage.prompt_tokens > 0);
      const body = upstream(target).requests[0]!.body as Record<string, any>;
      if (target === 'gpt') assert.equal(body.parallel_tool_calls, true);
      else assert.equal(body.tool_choice, undefined);
    });

    test(`anthropic client: a tool round trip, plain then streamed, through ${target}`, async () => {
      upstream(target).enqueue(
        { kind: 'ok', toolCalls: [{ id: 'toolu_1', name: 'get_weather', arguments: { city: 'Oslo' } }] },
        { kind: 'ok', toolCalls: [{ id: 'toolu_2', name: 'get_weather', arguments: { city: 'Bergen' } }] },
        { kind: 'ok', text: 'Cold in both.' },
      );
      const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'Weather in Oslo?' }];
      const first = await anthropic.messages.create({ model: target, max_tokens: 300, messages, tools: [anthropicWeatherTool] });
      assert.equal(first.stop_reason, 'tool_use');
      const use = first.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use')!;
      assert.deepEqual([use.id, use.name, use.input], ['toolu_1', 'get_weather', { city: 'Oslo' }]);
      messages.push({ role: 'assistant', content: first.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '-3C' }] });

      const second = await anthropic.messages.stream({ model: target, max_tokens: 300, messages, tools: [anthropicWeatherTool], tool_choice: { type: 'any' } }).finalMessage();
      assert.equal(second.stop_reason, 'tool_use');
      const use2 = second.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use')!;
      assert.deepEqual([use2.id, use2.input], ['toolu_2', { city: 'Bergen' }]);
      messages.push({ role: 'assistant', content: second.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: use2.id, content: '-1C' }] });
      const third = await anthropic.messages.create({ model: target, max_tokens: 300, messages, tools: [anthropicWeatherTool] });
      assert.equal(third.stop_reason, 'end_turn');
      assert.deepEqual(third.content.map((b) => (b.type === 'text' ? b.text : b.type)), ['Cold in both.']);

      const reqs = upstream(target).requests.map((r) => r.body as Record<string, any>);
      if (target === 'gpt') {
        assert.equal(reqs[1]!.tool_choice, 'required');
        const msgs = reqs[2]!.messages;
        assert.deepEqual(msgs.filter((m: any) => m.role === 'tool').map((m: any) => [m.tool_call_id, m.content]), [['toolu_1', '-3C'], ['toolu_2', '-1C']]);
      } else {
        assert.deepEqual(reqs[1]!.tool_choice, { type: 'any' });
        assert.deepEqual(reqs[2]!.messages.at(-1), { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_2', content: '-1C' }] });
      }
    });

    test(`openai client: .parse() with a zod json_schema succeeds through ${target}`, async () => {
      const Weather = z.object({ city: z.string(), celsius: z.number() });
      upstream(target).enqueue({ kind: 'ok', text: '{"city":"Lima","celsius":19}' });
      const res = await openai.chat.completions.parse({ model: target, messages: [{ role: 'user', content: 'Lima weather as JSON' }], response_format: zodResponseFormat(Weather, 'weather') });
      assert.deepEqual(res.choices[0]!.message.parsed, { city: 'Lima', celsius: 19 });
      const body = upstream(target).requests[0]!.body as Record<string, any>;
      if (target === 'gpt') {
        assert.equal(body.response_format.type, 'json_schema');
        assert.equal(body.response_format.json_schema.name, 'weather');
      } else {
        // Anthropic has no response_format: a forced tool whose input is the JSON.
        assert.deepEqual(body.tool_choice, { type: 'tool', name: 'json_response' });
        assert.equal(body.tools[0].name, 'json_response');
        assert.deepEqual(body.tools[0].input_schema.required, ['city', 'celsius']);
      }
    });

    test(`openai client: streamed json_object output arrives as content through ${target}`, async () => {
      upstream(target).enqueue({ kind: 'ok', text: '{"ok":true}' });
      const stream = await openai.chat.completions.create({ model: target, messages: [{ role: 'user', content: 'json please' }], response_format: { type: 'json_object' }, stream: true });
      let text = '';
      let finish: string | null = null;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      assert.deepEqual(JSON.parse(text), { ok: true });
      assert.equal(finish, 'stop');
    });
  }

  test('an OpenAI image_url (data URL) reaches Anthropic as a base64 image block, and an http URL as a url source', async () => {
    await openai.chat.completions.create({
      model: 'claude',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }, { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }],
    });
    const body = an.requests[0]!.body as Record<string, any>;
    assert.deepEqual(body.messages[0].content, [
      { type: 'text', text: 'What is this?' },
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
      { type: 'image', source: { type: 'url', url: 'https://example.com/cat.png' } },
    ]);
  });

  test('an Anthropic base64 image reaches OpenAI as an image_url data URL, and an OpenAI image reaches OpenAI untouched', async () => {
    await anthropic.messages.create({ model: 'gpt', max_tokens: 50, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } }, { type: 'text', text: 'Describe' }] }] });
    assert.deepEqual((oa.requests[0]!.body as any).messages[0].content, [{ type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }, { type: 'text', text: 'Describe' }]);
    const part = { type: 'image_url' as const, image_url: { url: 'https://example.com/a.jpg', detail: 'low' as const } };
    await openai.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: [part] }] });
    assert.deepEqual((oa.requests[1]!.body as any).messages[0].content, [part]);
  });

  test('an image detail other than auto cannot be expressed for Anthropic: 400 naming it', async () => {
    await assert.rejects(
      openai.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/a.jpg', detail: 'high' } }] }] }),
      (e: InstanceType<typeof OpenAI.APIError>) => e.status === 400 && /content\[0\]\.detail/.test(e.message),
    );
    assert.equal(an.requests.length, 0);
  });

  test('a PDF document block reaches Anthropic as it was, and OpenAI as a file part', async () => {
    const doc = { type: 'document' as const, source: { type: 'base64' as const, media_type: 'application/pdf' as const, data: 'JVBERi0xLjQK' }, title: 'spec.pdf' };
    await anthropic.messages.create({ model: 'claude', max_tokens: 50, messages: [{ role: 'user', content: [doc, { type: 'text', text: 'Summarise' }] }] });
    assert.deepEqual((an.requests[0]!.body as any).messages[0].content[0], doc);
    await anthropic.messages.create({ model: 'gpt', max_tokens: 50, messages: [{ role: 'user', content: [doc, { type: 'text', text: 'Summarise' }] }] });
    assert.deepEqual((oa.requests[0]!.body as any).messages[0].content[0], { type: 'file', file: { filename: 'spec.pdf', file_data: 'data:application/pdf;base64,JVBERi0xLjQK' } });
  });
});
