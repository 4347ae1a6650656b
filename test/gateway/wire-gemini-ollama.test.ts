// Tools, structured output and images through the Gemini and Ollama adapters, with the official
// clients: functionDeclarations / functionCall / functionResponse on Gemini, tool_calls with object
// arguments and tool messages on Ollama, plain and streamed; what they cannot express is a 400.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import type { StandIn } from '../standins/common.ts';
import { gatewayOver, model, postJson, type TestGateway } from '../helpers/gateway.ts';

const weatherTool: OpenAI.ChatCompletionTool = {
  type: 'function',
  function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

describe('Gemini and Ollama carry tools, structured output and images', () => {
  const t = gatewayOver(['gemini', 'ollama'], (url) => ({
    models: [model('gem', 'gemini', url.gemini, { upstreamModel: 'gemini-2.0-flash' }), model('llama', 'ollama', url.ollama, { upstreamModel: 'llama3.1' })],
    env: { TEST_KEY: 'test-key-abcdef' },
  }));
  let ge: StandIn;
  let ol: StandIn;
  let gw: TestGateway;
  let openai: OpenAI;
  let anthropic: Anthropic;
  const upstream = (id: string) => (id === 'gem' ? ge : ol);
  before(() => {
    ({ up: { gemini: ge, ollama: ol }, gw } = t);
    openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    anthropic = new Anthropic({ baseURL: gw.url, apiKey: 'unused', maxRetries: 0 });
  });

  for (const target of ['gem', 'llama']) {
    test(`openai client: a tool round trip (call, result, final answer) through ${target}`, async () => {
      upstream(target).enqueue({ kind: 'ok', toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] }, { kind: 'ok', text: 'It is sunny in Paris.' });
      const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Paris?' }];
      const first = await openai.chat.completions.create({ model: target, messages, tools: [weatherTool] });
      const choice = first.choices[0]!;
      assert.equal(choice.finish_reason, 'tool_calls');
      const call = choice.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
      assert.equal(call.function.name, 'get_weather');
      assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
      assert.ok(call.id.length > 0);
      messages.push(choice.message, { role: 'tool', tool_call_id: call.id, content: '{"sky":"clear"}' });
      const second = await openai.chat.completions.create({ model: target, messages, tools: [weatherTool] });
      assert.equal(second.choices[0]!.message.content, 'It is sunny in Paris.');
      const sent = upstream(target).requests[1]!.body as any;
      if (target === 'gem') {
        assert.deepEqual(sent.tools, [{ functionDeclarations: [{ name: 'get_weather', description: 'Weather for a city', parametersJsonSchema: weatherTool.function.parameters }] }]);
        assert.deepEqual(sent.contents[1], { role: 'model', parts: [{ functionCall: { id: call.id, name: 'get_weather', args: { city: 'Paris' } } }] });
        assert.deepEqual(sent.contents[2], { role: 'user', parts: [{ functionResponse: { id: call.id, name: 'get_weather', response: { sky: 'clear' } } }] });
      } else {
        assert.deepEqual(sent.tools, [{ type: 'function', function: weatherTool.function }]);
        assert.deepEqual(sent.messages[1], { role: 'assistant', content: '', tool_calls: [{ function: { name: 'get_weather', arguments: { city: 'Paris' } } }] });
        assert.deepEqual(sent.messages[2], { role: 'tool', content: '{"sky":"clear"}', tool_name: 'get_weather' });
      }
    });

    test(`openai client: streamed parallel tool calls through ${target} arrive as complete calls`, async () => {
      upstream(target).enqueue({ kind: 'ok', toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }, { name: 'get_weather', arguments: { city: 'Rome' } }] });
      const stream = openai.chat.completions.stream({ model: target, messages: [{ role: 'user', content: 'Paris and Rome?' }], tools: [weatherTool] });
      const final = await stream.finalChatCompletion();
      const calls = final.choices[0]!.message.tool_calls! as OpenAI.ChatCompletionMessageFunctionToolCall[];
      assert.deepEqual(calls.map((c) => JSON.parse(c.function.arguments).city), ['Paris', 'Rome']);
      assert.equal(new Set(calls.map((c) => c.id)).size, 2);
      assert.equal(final.choices[0]!.finish_reason, 'tool_calls');
    });

    test(`anthropic client: a streamed tool round trip through ${target}`, async () => {
      upstream(target).enqueue({ kind: 'ok', toolCalls: [{ name: 'get_weather', arguments: { city: 'Oslo' } }] }, { kind: 'ok', text: 'Snow in Oslo.' });
      const tools: Anthropic.Tool[] = [{ name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }];
      const q: Anthropic.MessageParam = { role: 'user', content: 'Weather in Oslo?' };
      const first = await anthropic.messages.stream({ model: target, max_tokens: 100, messages: [q], tools }).finalMessage();
      assert.equal(first.stop_reason, 'tool_use');
      const use = first.content.find((b) => b.type === 'tool_use') as Anthropic.ToolUseBlock;
      assert.deepEqual(use.input, { city: 'Oslo' });
      const second = await anthropic.messages.stream({ model: target, max_tokens: 100, tools, messages: [q, { role: 'assistant', content: first.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'snow' }] }] }).finalMessage();
      assert.equal((second.content[0] as Anthropic.TextBlock).text, 'Snow in Oslo.');
    });

    test(`openai client: .parse() with a zod json_schema succeeds through ${target}`, async () => {
      upstream(target).enqueue({ kind: 'ok', text: '{"city":"Paris","celsius":21}' });
      const r = await openai.chat.completions.parse({ model: target, messages: [{ role: 'user', content: 'Weather?' }], response_format: zodResponseFormat(z.object({ city: z.string(), celsius: z.number() }), 'weather') });
      assert.deepEqual(r.choices[0]!.message.parsed, { city: 'Paris', celsius: 21 });
      const sent = upstream(target).requests[0]!.body as any;
      if (target === 'gem') {
        assert.equal(sent.generationConfig.responseMimeType, 'application/json');
        assert.equal(sent.generationConfig.responseJsonSchema.properties.celsius.type, 'number');
      } else {
        assert.equal(sent.format.properties.city.type, 'string');
      }
    });

    test(`a base64 image reaches ${target} in its wire form; an http URL image is a 400 naming it`, async () => {
      await openai.chat.completions.create({ model: target, messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }] }] });
      const sent = upstream(target).requests[0]!.body as any;
      if (target === 'gem') assert.deepEqual(sent.contents[0].parts, [{ text: 'what is this' }, { inlineData: { mimeType: 'image/png', data: PNG } }]);
      else assert.deepEqual(sent.messages[0], { role: 'user', content: 'what is this', images: [PNG] });
      const r = await postJson(`${gw.url}/v1/chat/completions`, { model: target, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }] });
      assert.equal(r.status, 400);
      assert.equal(r.body.error.code, 'unsupported_parameter');
      assert.match(r.body.error.message, /image from url/);
    });
  }

  test('tool_choice: Gemini forces a named function with mode ANY; Ollama cannot force one (400 naming tool_choice)', async () => {
    const forced = await openai.chat.completions.create({ model: 'gem', messages: [{ role: 'user', content: 'go' }], tools: [weatherTool], tool_choice: { type: 'function', function: { name: 'get_weather' } } });
    assert.deepEqual((ge.requests[0]!.body as any).toolConfig, { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['get_weather'] } });
    assert.equal(forced.choices[0]!.message.tool_calls?.[0]?.type, 'function');
    const r = await postJson(`${gw.url}/v1/chat/completions`, { model: 'llama', messages: [{ role: 'user', content: 'go' }], tools: [weatherTool], tool_choice: 'required' });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.param, 'tool_choice');
    const none = await postJson(`${gw.url}/v1/chat/completions`, { model: 'llama', messages: [{ role: 'user', content: 'go' }], tools: [weatherTool], tool_choice: 'none' });
    assert.equal(none.status, 200);
    assert.equal((ol.requests[0]!.body as any).tools, undefined);
  });

  test('parallel_tool_calls: false cannot be expressed on Gemini or Ollama: 400 naming it', async () => {
    for (const target of ['gem', 'llama']) {
      const r = await postJson(`${gw.url}/v1/chat/completions`, { model: target, messages: [{ role: 'user', content: 'go' }], tools: [weatherTool], parallel_tool_calls: false });
      assert.equal(r.status, 400, target);
      assert.equal(r.body.error.param, 'parallel_tool_calls');
    }
  });
});
