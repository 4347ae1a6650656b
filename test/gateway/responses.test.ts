// /v1/responses with the official openai client (responses.create, plain and streamed): input as a
// string or items, instructions, function tools and function_call_output items through any adapter,
// structured output, the event sequence, item references, and fields it cannot carry refused by name.
import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { zodTextFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import type { StandIn } from '../standins/common.ts';
import { gatewayOver, model, fixedRouter, postJson, type TestGateway } from '../helpers/gateway.ts';

const weatherTool = { type: 'function' as const, name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }, strict: false };

describe('/v1/responses', () => {
  const t = gatewayOver(['openai', 'anthropic', 'gemini'], (url) => ({
    models: [model('gpt', 'openai', url.openai), model('claude', 'anthropic', url.anthropic, { upstreamModel: 'claude-sonnet-4-5' }), model('gem', 'gemini', url.gemini)],
    env: { TEST_KEY: 'test-key-abcdef' },
    router: fixedRouter(['claude', 'gpt']),
  }));
  let oa: StandIn;
  let an: StandIn;
  let gw: TestGateway;
  let client: OpenAI;
  before(() => {
    ({ up: { openai: oa, anthropic: an }, gw } = t);
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });

  test('a string input with instructions: routed by "auto", answered as a response with output_text and usage', async () => {
    an.enqueue({ kind: 'ok', text: 'Hello there.' });
    const r = await client.responses.create({ model: 'auto', input: 'Say hello', instructions: 'Be brief.', max_output_tokens: 50, temperature: 0.5 });
    assert.equal(r.object, 'response');
    assert.equal(r.status, 'completed');
    assert.equal(r.output_text, 'Hello there.');
    assert.equal(r.model, 'claude');
    assert.ok(r.usage!.input_tokens > 0 && r.usage!.output_tokens > 0);
    assert.equal((r as any)._routing.selected, 'claude');
    const body = an.requests[0]!.body as any;
    assert.equal(body.system, 'Be brief.');
    assert.deepEqual(body.messages, [{ role: 'user', content: 'Say hello' }]);
    assert.equal(body.max_tokens, 50);
    assert.equal(body.temperature, 0.5);
    const feedback = await postJson(`${gw.url}/api/feedback`, { request_id: r.id, rating: 5 });
    assert.equal(feedback.status, 201, JSON.stringify(feedback.body));
  });

  test('function tools round trip on an OpenAI upstream: the call comes back as a function_call item, its output goes back as a tool message', async () => {
    oa.enqueue({ kind: 'ok', toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: { city: 'Paris' } }] });
    const first = await client.responses.create({ model: 'gpt', input: [{ role: 'user', content: 'Weather in Paris?' }], tools: [weatherTool], tool_choice: 'auto' });
    const call = first.output.find((o) => o.type === 'function_call')!;
    assert.ok(call && call.type === 'function_call');
    assert.equal(call.name, 'get_weather');
    assert.equal(call.call_id, 'call_1');
    assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });
    const sentTools = (oa.requests[0]!.body as any).tools;
    assert.deepEqual(sentTools, [{ type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: weatherTool.parameters, strict: false } }]);

    oa.enqueue({ kind: 'ok', text: 'It is sunny in Paris.' });
    const second = await client.responses.create({
      model: 'gpt',
      input: [
        { role: 'user', content: 'Weather in Paris?' },
        { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments },
        { type: 'function_call_output', call_id: call.call_id, output: '{"sky":"sunny"}' },
      ],
      tools: [weatherTool],
    });
    assert.equal(second.output_text, 'It is sunny in Paris.');
    const msgs = (oa.requests[1]!.body as any).messages;
    assert.equal(msgs[1].role, 'assistant');
    assert.equal(msgs[1].tool_calls[0].id, 'call_1');
    assert.deepEqual(msgs[2], { role: 'tool', tool_call_id: 'call_1', content: '{"sky":"sunny"}' });
  });

  test('the same tool round trip on an Anthropic upstream maps to tool_use / tool_result blocks', async () => {
    an.enqueue({ kind: 'ok', toolCalls: [{ id: 'toolu_9', name: 'get_weather', arguments: { city: 'Oslo' } }] });
    const first = await client.responses.create({ model: 'claude', input: 'Weather in Oslo?', tools: [weatherTool], tool_choice: { type: 'function', name: 'get_weather' } });
    assert.deepEqual((an.requests[0]!.body as any).tool_choice, { type: 'tool', name: 'get_weather' });
    const call = first.output.find((o) => o.type === 'function_call') as any;
    assert.equal(call.call_id, 'toolu_9');
    await client.responses.create({
      model: 'claude',
      input: [{ role: 'user', content: 'Weather in Oslo?' }, { type: 'function_call', call_id: 'toolu_9', name: 'get_weather', arguments: call.arguments }, { type: 'function_call_output', call_id: 'toolu_9', output: 'snow' }],
      tools: [weatherTool],
    });
    const msgs = (an.requests[1]!.body as any).messages;
    assert.deepEqual(msgs[1].content, [{ type: 'tool_use', id: 'toolu_9', name: 'get_weather', input: { city: 'Oslo' } }]);
    assert.deepEqual(msgs[2].content, [{ type: 'tool_result', tool_use_id: 'toolu_9', content: 'snow' }]);
  });

  test('streaming text: created, in_progress, item and part added, output_text deltas, done events and completed, in sequence', async () => {
    an.enqueue({ kind: 'ok', text: 'one two three four five' });
    const stream = await client.responses.create({ model: 'claude', input: 'count', stream: true });
    const events: any[] = [];
    for await (const e of stream) events.push(e);
    const types = events.map((e) => e.type);
    assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
    assert.deepEqual(types.slice(-4), ['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed']);
    assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
    const text = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
    assert.equal(text, 'one two three four five');
    const done = events.at(-1).response;
    assert.equal(done.status, 'completed');
    assert.equal(done.output[0].content[0].text, 'one two three four five');
    assert.ok(done.usage.output_tokens > 0);
  });

  test('streaming a tool call: function_call item added, arguments deltas, arguments done, completed with the call', async () => {
    oa.enqueue({ kind: 'ok', toolCalls: [{ id: 'call_s', name: 'get_weather', arguments: { city: 'Rome' } }] });
    const stream = client.responses.stream({ model: 'gpt', input: 'Weather in Rome?', tools: [weatherTool] });
    const types: string[] = [];
    let args = '';
    for await (const e of stream) {
      types.push(e.type);
      if (e.type === 'response.function_call_arguments.delta') args += e.delta;
    }
    const final = await stream.finalResponse();
    assert.ok(types.includes('response.output_item.added'));
    assert.ok(types.includes('response.function_call_arguments.done'));
    assert.deepEqual(JSON.parse(args), { city: 'Rome' });
    const call = final.output.find((o) => o.type === 'function_call') as any;
    assert.equal(call.call_id, 'call_s');
    assert.deepEqual(JSON.parse(call.arguments), { city: 'Rome' });
  });

  test('structured output (text.format json_schema) works on Anthropic through the forced json tool', async () => {
    an.enqueue({ kind: 'ok', text: '{"name":"Ada","age":36}' });
    const r = await client.responses.create({
      model: 'claude',
      input: 'Who?',
      text: { format: { type: 'json_schema', name: 'person', schema: { type: 'object', properties: { name: { type: 'string' }, age: { type: 'number' } }, required: ['name', 'age'], additionalProperties: false }, strict: true } },
    });
    assert.deepEqual(JSON.parse(r.output_text), { name: 'Ada', age: 36 });
    assert.equal((an.requests[0]!.body as any).tool_choice.name, 'json_response');
  });

  test('responses.parse with zodTextFormat gets output_parsed, through an OpenAI upstream as response_format json_schema', async () => {
    oa.enqueue({ kind: 'ok', text: '{"city":"Paris","celsius":21}' });
    const r = await client.responses.parse({ model: 'gpt', input: 'Weather?', text: { format: zodTextFormat(z.object({ city: z.string(), celsius: z.number() }), 'weather') } });
    assert.deepEqual(r.output_parsed, { city: 'Paris', celsius: 21 });
    const rf = (oa.requests[0]!.body as any).response_format;
    assert.equal(rf.type, 'json_schema');
    assert.equal(rf.json_schema.name, 'weather');
    assert.equal(rf.json_schema.strict, true);
  });

  test('an assistant message the gateway answered can be referenced by id (item_reference); an unknown one is refused by name', async () => {
    an.enqueue({ kind: 'ok', text: 'I am Claude.' });
    const first = await client.responses.create({ model: 'claude', input: 'who are you' });
    const msgId = first.output[0]!.id!;
    await client.responses.create({ model: 'claude', input: [{ role: 'user', content: 'who are you' }, { type: 'item_reference', id: msgId }, { role: 'user', content: 'and again?' }] as any });
    const msgs = (an.requests[1]!.body as any).messages;
    assert.deepEqual(msgs[1], { role: 'assistant', content: [{ type: 'text', text: 'I am Claude.' }] });
    const r = await postJson(`${gw.url}/v1/responses`, { model: 'claude', input: [{ type: 'item_reference', id: 'msg_unknown' }, { role: 'user', content: 'x' }] });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'unsupported_parameter');
    assert.match(r.body.error.message, /item_reference/);
  });

  test('previous_response_id continues a conversation the gateway answered (instructions are not carried); a tool loop needs only the outputs', async () => {
    an.enqueue({ kind: 'ok', text: 'Paris.' });
    const first = await client.responses.create({ model: 'claude', instructions: 'Be brief.', input: 'Capital of France?' });
    an.enqueue({ kind: 'ok', text: 'Berlin.' });
    const second = await client.responses.create({ model: 'claude', previous_response_id: first.id, input: 'And of Germany?' });
    assert.equal(second.previous_response_id, first.id);
    const sent = an.requests[1]!.body as any;
    assert.equal(sent.system, undefined);
    assert.deepEqual(sent.messages, [
      { role: 'user', content: 'Capital of France?' },
      { role: 'assistant', content: [{ type: 'text', text: 'Paris.' }] },
      { role: 'user', content: 'And of Germany?' },
    ]);

    oa.enqueue({ kind: 'ok', toolCalls: [{ id: 'call_p', name: 'get_weather', arguments: { city: 'Paris' } }] }, { kind: 'ok', text: 'Sunny.' });
    const call = await client.responses.create({ model: 'gpt', input: 'Weather in Paris?', tools: [weatherTool] });
    const done = await client.responses.create({ model: 'gpt', previous_response_id: call.id, input: [{ type: 'function_call_output', call_id: 'call_p', output: 'sunny' }], tools: [weatherTool] });
    assert.equal(done.output_text, 'Sunny.');
    const msgs = (oa.requests[1]!.body as any).messages;
    assert.equal(msgs[1].tool_calls[0].id, 'call_p');
    assert.deepEqual(msgs[2], { role: 'tool', tool_call_id: 'call_p', content: 'sunny' });
  });

  test('previous_response_id to an unknown response, or one sent with store: false, is refused by name', async () => {
    const unknown = await postJson(`${gw.url}/v1/responses`, { model: 'gpt', input: 'hi', previous_response_id: 'resp_nope' });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.error.code, 'unsupported_parameter');
    assert.equal(unknown.body.error.param, 'previous_response_id');
    const unstored = await client.responses.create({ model: 'gpt', input: 'hi', store: false });
    const r = await postJson(`${gw.url}/v1/responses`, { model: 'gpt', input: 'again', previous_response_id: unstored.id });
    assert.equal(r.status, 400);
  });

  test('what cannot be mapped is refused by name with 400 unsupported_parameter', async () => {
    for (const [extra, named] of [
      [{ tools: [{ type: 'web_search' }] }, /tools\.0 \(type web_search\)/],
      [{ input: [{ type: 'reasoning', id: 'rs_1', summary: [] }, { role: 'user', content: 'x' }] }, /input\.0 \(type reasoning\)/],
      [{ prompt_cache_key: 'k' }, /prompt_cache_key/],
      [{ made_up_field: 1 }, /made_up_field/],
      [{ include: ['reasoning.encrypted_content'] }, /include/],
      [{ truncation: 'auto' }, /truncation/],
      [{ text: { verbosity: 'low' } }, /text\.verbosity/],
    ] as const) {
      const r = await postJson(`${gw.url}/v1/responses`, { model: 'gpt', input: 'hi', ...extra });
      assert.equal(r.status, 400, JSON.stringify(extra));
      assert.equal(r.body.error.code, 'unsupported_parameter');
      assert.match(r.body.error.message, named);
    }
    assert.equal(oa.requests.length, 0);
  });

  test('an input_image reaches an OpenAI upstream as image_url; detail high, which Anthropic cannot express, is a 400 there', async () => {
    const ok = await postJson(`${gw.url}/v1/responses`, { model: 'gpt', input: [{ role: 'user', content: [{ type: 'input_text', text: 'hi' }, { type: 'input_image', image_url: 'https://example.com/a.png', detail: 'high' }] }] });
    assert.equal(ok.status, 200);
    assert.deepEqual((oa.requests[0]!.body as any).messages[0].content[1], { type: 'image_url', image_url: { url: 'https://example.com/a.png', detail: 'high' } });
    const refused = await postJson(`${gw.url}/v1/responses`, { model: 'claude', input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'https://example.com/a.png', detail: 'high' }] }] });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error.code, 'unsupported_parameter');
  });

  test('bad bodies are clear 400s, never 500s', async () => {
    for (const body of [{ model: 'gpt' }, { model: 'gpt', input: 42 }, { model: 'gpt', input: [{ role: 'user' }] }, { model: 'gpt', input: [{ type: 'function_call_output', output: 'x' }] }, { model: 'gpt', input: 'x', temperature: 9 }]) {
      const r = await postJson(`${gw.url}/v1/responses`, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.error.type, 'invalid_request_error');
    }
  });
});
