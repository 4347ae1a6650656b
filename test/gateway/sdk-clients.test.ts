// The Vercel `ai` SDK (@ai-sdk/openai over Chat Completions and the Responses API, @ai-sdk/anthropic)
// and LangChain's ChatOpenAI against the running gateway with stand-in upstreams: tool round
// trips (generateText, bindTools), structured output (generateObject, withStructuredOutput).
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import { generateText, generateObject, streamText, tool, stepCountIs, jsonSchema } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { createAnthropic } from '@ai-sdk/anthropic';
import { ChatOpenAI } from '@langchain/openai';
import { HumanMessage, ToolMessage } from '@langchain/core/messages';
import { z } from 'zod';
import type { StandIn } from '../standins/common.ts';
import { gatewayOver, model, fixedRouter, type TestGateway } from '../helpers/gateway.ts';

const weatherInput = jsonSchema<{ city: string }>({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false });
const personSchema = jsonSchema<{ name: string; age: number }>({ type: 'object', properties: { name: { type: 'string' }, age: { type: 'number' } }, required: ['name', 'age'], additionalProperties: false });

describe('Vercel ai SDK and LangChain clients', () => {
  const t = gatewayOver(['openai', 'anthropic'], (url) => ({
    models: [model('gpt', 'openai', url.openai, { upstreamModel: 'gpt-4o' }), model('claude', 'anthropic', url.anthropic, { upstreamModel: 'claude-sonnet-4-5' })],
    env: { TEST_KEY: 'test-key-abcdef' },
    router: fixedRouter(['gpt', 'claude']),
  }));
  let oa: StandIn;
  let an: StandIn;
  let gw: TestGateway;
  before(() => {
    ({ up: { openai: oa, anthropic: an }, gw } = t);
  });

  const openai = () => createOpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused' });
  const anthropic = () => createAnthropic({ baseURL: `${gw.url}/v1`, apiKey: 'unused' });
  const weatherTool = () => {
    const seen: string[] = [];
    return { seen, weather: tool({ description: 'Weather for a city', inputSchema: weatherInput, execute: async ({ city }) => { seen.push(city); return { city, sky: 'sunny' }; } }) };
  };

  for (const [name, upstream, makeModel] of [
    ['@ai-sdk/openai chat (Chat Completions) on an OpenAI upstream', () => oa, () => openai().chat('gpt')],
    ['@ai-sdk/openai default (Responses API) on an OpenAI upstream', () => oa, () => openai()('gpt')],
    ['@ai-sdk/openai default (Responses API) on an Anthropic upstream', () => an, () => openai()('claude')],
    ['@ai-sdk/anthropic on an Anthropic upstream', () => an, () => anthropic()('claude')],
    ['@ai-sdk/anthropic on an OpenAI upstream', () => oa, () => anthropic()('gpt')],
  ] as const) {
    test(`generateText with a tool: ${name} (call, result, final answer)`, async () => {
      const up = upstream();
      up.enqueue({ kind: 'ok', toolCalls: [{ id: 'call_w1', name: 'weather', arguments: { city: 'Paris' } }] }, { kind: 'ok', text: 'Sunny in Paris.' });
      const { seen, weather } = weatherTool();
      const r = await generateText({ model: makeModel(), tools: { weather }, stopWhen: stepCountIs(3), prompt: 'Weather in Paris?' });
      assert.deepEqual(seen, ['Paris']);
      assert.equal(r.text, 'Sunny in Paris.');
      assert.equal(r.steps.length, 2);
      assert.equal(up.requests.length, 2);
      // The second upstream call carries the call and its result in the upstream's own form.
      const second = JSON.stringify(up.requests[1]!.body);
      assert.match(second, /call_w1/);
      assert.match(second, /sunny/);
    });
  }

  for (const [name, upstream, makeModel] of [
    ['@ai-sdk/openai chat (Chat Completions) on an Anthropic upstream', () => an, () => openai().chat('claude')],
    ['@ai-sdk/openai default (Responses API) on an Anthropic upstream', () => an, () => openai()('claude')],
    ['@ai-sdk/openai default (Responses API) on an OpenAI upstream', () => oa, () => openai()('gpt')],
    ['@ai-sdk/anthropic on an OpenAI upstream', () => oa, () => anthropic()('gpt')],
  ] as const) {
    test(`streamText with a tool: ${name} (streamed call, result, streamed answer)`, async () => {
      const up = upstream();
      up.enqueue({ kind: 'ok', toolCalls: [{ id: 'call_s1', name: 'weather', arguments: { city: 'Lima' } }] }, { kind: 'ok', text: 'Mild in Lima today.' });
      const { seen, weather } = weatherTool();
      const r = streamText({ model: makeModel(), tools: { weather }, stopWhen: stepCountIs(3), prompt: 'Weather in Lima?' });
      let text = '';
      for await (const delta of r.textStream) text += delta;
      assert.deepEqual(seen, ['Lima']);
      assert.equal(text, 'Mild in Lima today.');
      assert.equal((await r.steps).length, 2);
      assert.equal((up.requests[0]!.body as any).stream, true);
    });
  }

  for (const [name, upstream, makeModel] of [
    ['@ai-sdk/openai chat', () => oa, () => openai().chat('gpt')],
    ['@ai-sdk/openai Responses API', () => oa, () => openai()('gpt')],
    ['@ai-sdk/openai Responses API on Anthropic', () => an, () => openai()('claude')],
    ['@ai-sdk/anthropic', () => an, () => anthropic()('claude')],
  ] as const) {
    test(`generateObject: ${name}`, async () => {
      upstream().enqueue({ kind: 'ok', text: '{"name":"Ada","age":36}' });
      const r = await generateObject({ model: makeModel(), schema: personSchema, prompt: 'Who wrote the first program?' });
      assert.deepEqual(r.object, { name: 'Ada', age: 36 });
    });
  }

  test('LangChain ChatOpenAI with tools: tool_calls out, ToolMessage back, final answer', async () => {
    oa.enqueue({ kind: 'ok', toolCalls: [{ id: 'call_lc', name: 'weather', arguments: { city: 'Oslo' } }] }, { kind: 'ok', text: 'Snow in Oslo.' });
    const llm = new ChatOpenAI({ model: 'gpt', apiKey: 'unused', configuration: { baseURL: `${gw.url}/v1` }, maxRetries: 0 });
    const withTools = llm.bindTools([{ type: 'function', function: { name: 'weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }]);
    const question = new HumanMessage('Weather in Oslo?');
    const first = await withTools.invoke([question]);
    assert.equal(first.tool_calls?.[0]?.name, 'weather');
    assert.deepEqual(first.tool_calls?.[0]?.args, { city: 'Oslo' });
    const final = await withTools.invoke([question, first, new ToolMessage({ tool_call_id: first.tool_calls![0]!.id!, content: 'snow' })]);
    assert.equal(final.content, 'Snow in Oslo.');
    const msgs = (oa.requests[1]!.body as any).messages;
    assert.deepEqual(msgs.at(-1), { role: 'tool', tool_call_id: 'call_lc', content: 'snow' });
  });

  test('LangChain ChatOpenAI with tools over the Responses API (useResponsesApi): function_call out, its output back', async () => {
    an.enqueue({ kind: 'ok', toolCalls: [{ id: 'toolu_lc', name: 'weather', arguments: { city: 'Kyiv' } }] }, { kind: 'ok', text: 'Cold in Kyiv.' });
    const llm = new ChatOpenAI({ model: 'claude', apiKey: 'unused', configuration: { baseURL: `${gw.url}/v1` }, maxRetries: 0, useResponsesApi: true });
    const withTools = llm.bindTools([{ type: 'function', function: { name: 'weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }]);
    const question = new HumanMessage('Weather in Kyiv?');
    const first = await withTools.invoke([question]);
    assert.deepEqual(first.tool_calls?.[0]?.args, { city: 'Kyiv' });
    const final = await withTools.invoke([question, first, new ToolMessage({ tool_call_id: first.tool_calls![0]!.id!, content: 'cold' })]);
    assert.equal(final.text, 'Cold in Kyiv.');
    const msgs = (an.requests[1]!.body as any).messages;
    assert.deepEqual(msgs.at(-1).content, [{ type: 'tool_result', tool_use_id: 'toolu_lc', content: 'cold' }]);
  });

  for (const [name, opts] of [
    ['Chat Completions', {}],
    ['the Responses API', { useResponsesApi: true }],
  ] as const) {
    test(`LangChain withStructuredOutput over ${name}`, async () => {
      oa.enqueue({ kind: 'ok', text: '{"name":"Ada","age":36}' });
      const llm = new ChatOpenAI({ model: 'gpt', apiKey: 'unused', configuration: { baseURL: `${gw.url}/v1` }, maxRetries: 0, ...opts });
      const structured = llm.withStructuredOutput(z.object({ name: z.string(), age: z.number() }), { name: 'person' });
      const out = await structured.invoke('Who wrote the first program?');
      assert.deepEqual(out, { name: 'Ada', age: 36 });
    });
  }
});
