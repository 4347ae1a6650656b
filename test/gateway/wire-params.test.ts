// Wire fidelity of parameters: every documented field reaches the upstream or is refused with a
// 400 naming it; Claude Code- and Cursor-shaped requests arrive whole; usage keeps cache and
// reasoning counts; candidates that cannot carry a field are skipped and `_routing` says so.
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startOpenAIStandIn } from '../standins/openai.ts';
import { startAnthropicStandIn } from '../standins/anthropic.ts';
import { startGeminiStandIn } from '../standins/gemini.ts';
import type { StandIn } from '../standins/common.ts';
import { startGateway, model, fixedRouter, postJson, type TestGateway } from '../helpers/gateway.ts';
import { defaultMaxTokens } from '../../server/providers/anthropic.ts';

describe('every parameter reaches the upstream or is refused by name', () => {
  let oa: StandIn;
  let an: StandIn;
  let ge: StandIn;
  let gw: TestGateway;
  let openai: OpenAI;
  let anthropic: Anthropic;

  before(async () => {
    oa = await startOpenAIStandIn();
    an = await startAnthropicStandIn();
    ge = await startGeminiStandIn();
    gw = await startGateway({
      models: [model('gpt', 'openai', oa.url), model('claude', 'anthropic', an.url, { upstreamModel: 'claude-sonnet-4-5' }), model('gem', 'gemini', ge.url)],
      env: { TEST_KEY: 'test-key-abcdef' },
      router: fixedRouter(['gem', 'claude', 'gpt']),
    });
    openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    anthropic = new Anthropic({ baseURL: gw.url, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    await Promise.all([oa.close(), an.close(), ge.close()]);
  });
  beforeEach(() => {
    oa.reset();
    an.reset();
    ge.reset();
  });

  const openaiParams = {
    seed: 7,
    logprobs: true,
    top_logprobs: 2,
    presence_penalty: 0.5,
    frequency_penalty: 0.25,
    logit_bias: { '50256': -100 },
    user: 'end-user-1',
    metadata: { team: 'blue' },
    reasoning_effort: 'low' as const,
    store: false,
    service_tier: 'auto' as const,
    max_completion_tokens: 99,
    temperature: 1.5,
    top_p: 0.9,
    stop: ['END'],
  };

  test('OpenAI parameters all reach an OpenAI upstream under their own names, message name included', async () => {
    await openai.chat.completions.create({ model: 'gpt', messages: [{ role: 'developer', content: 'be brief' }, { role: 'user', content: 'hi', name: 'alice' }], ...openaiParams });
    const body = oa.requests[0]!.body as Record<string, unknown>;
    for (const [k, v] of Object.entries(openaiParams)) assert.deepEqual(body[k], v, k);
    assert.equal(body.max_tokens, undefined);
    assert.deepEqual(body.messages, [{ role: 'developer', content: 'be brief' }, { role: 'user', content: 'hi', name: 'alice' }]);
  });

  test('max_tokens from an OpenAI client stays max_tokens; from an Anthropic client it goes to OpenAI as max_completion_tokens', async () => {
    await openai.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }], max_tokens: 12 });
    assert.equal((oa.requests[0]!.body as any).max_tokens, 12);
    await anthropic.messages.create({ model: 'gpt', max_tokens: 13, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal((oa.requests[1]!.body as any).max_completion_tokens, 13);
    assert.equal((oa.requests[1]!.body as any).max_tokens, undefined);
  });

  for (const [field, extra, named] of [
    ['seed', { seed: 7 }, /seed/],
    ['logit_bias', { logit_bias: { '1': 1 } }, /logit_bias/],
    ['temperature 1.5', { temperature: 1.5 }, /temperature above 1/],
    ['reasoning_effort', { reasoning_effort: 'low' }, /reasoning_effort/],
    ['an unknown field', { store: true }, /store/],
    ['a message name', { messages: [{ role: 'user', content: 'hi', name: 'bob' }] }, /messages\[0\]\.name/],
  ] as const) {
    test(`${field} cannot be expressed for Anthropic: 400 naming it, nothing sent`, async () => {
      const r = await postJson(`${gw.url}/v1/chat/completions`, { model: 'claude', messages: [{ role: 'user', content: 'hi' }], ...extra });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.match(r.body.error.message, named);
      assert.equal(r.body.error.code, 'unsupported_parameter');
      assert.equal(an.requests.length, 0);
    });
  }

  test('Anthropic parameters all reach an Anthropic upstream; top_k to OpenAI is a 400 naming it', async () => {
    // top_k, top_p and temperature are older API fields Claude Code still sends; this SDK has no types for them.
    const params = { top_k: 5, top_p: 0.8, temperature: 0.3, stop_sequences: ['###'], metadata: { user_id: 'u-42' }, service_tier: 'auto' as const, cache_control: { type: 'ephemeral' } };
    await anthropic.messages.create({ model: 'claude', max_tokens: 40, messages: [{ role: 'user', content: 'hi' }], ...params } as Anthropic.MessageCreateParamsNonStreaming);
    const body = an.requests[0]!.body as Record<string, unknown>;
    for (const [k, v] of Object.entries(params)) assert.deepEqual(body[k], v, k);
    await assert.rejects(
      anthropic.messages.create({ model: 'gpt', max_tokens: 40, messages: [{ role: 'user', content: 'hi' }], top_k: 5 } as Anthropic.MessageCreateParamsNonStreaming),
      (e: InstanceType<typeof Anthropic.APIError>) => e.status === 400 && /top_k/.test(e.message),
    );
    assert.equal(oa.requests.length, 0);
  });

  test('metadata.user_id from Anthropic becomes OpenAI user; OpenAI user becomes Anthropic metadata.user_id', async () => {
    await anthropic.messages.create({ model: 'gpt', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }], metadata: { user_id: 'u-7' } });
    assert.equal((oa.requests[0]!.body as any).user, 'u-7');
    await openai.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'hi' }], user: 'u-8' });
    assert.deepEqual((an.requests[0]!.body as any).metadata, { user_id: 'u-8' });
  });

  test('with no max_tokens an Anthropic upstream gets the model ceiling, not 1024', async () => {
    await openai.chat.completions.create({ model: 'claude', messages: [{ role: 'user', content: 'hi' }] });
    const sent = (an.requests[0]!.body as any).max_tokens;
    assert.equal(sent, defaultMaxTokens({ baseUrl: '', upstreamModel: 'claude-sonnet-4-5' }));
    assert.equal(sent, 64000);
  });

  test('nulls OpenAI accepts (user, tools, stream, tool_choice, response_format, seed) are the defaults, not a 400', async () => {
    const r = await postJson(`${gw.url}/v1/chat/completions`, { model: 'gpt', messages: [{ role: 'user', content: 'hi' }], user: null, tools: null, stream: null, tool_choice: null, response_format: null, seed: null, metadata: null });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const body = oa.requests[0]!.body as Record<string, unknown>;
    for (const k of ['user', 'tools', 'tool_choice', 'response_format', 'seed', 'metadata']) assert.equal(k in body, false, k);
  });

  test('text parts are separate parts upstream and the routed text joins them with a newline', async () => {
    const r = await postJson(`${gw.url}/v1/chat/completions`, { model: 'claude', messages: [{ role: 'user', content: [{ type: 'text', text: 'Translate:' }, { type: 'text', text: 'bonjour' }] }] });
    assert.equal(r.status, 200);
    assert.deepEqual((an.requests[0]!.body as any).messages[0].content, [{ type: 'text', text: 'Translate:' }, { type: 'text', text: 'bonjour' }]);
    assert.equal(r.body._routing.features.chars, 'Translate:\nbonjour'.length);
  });

  test('a Claude Code-shaped request reaches the upstream with everything it carried', async () => {
    an.enqueue({ kind: 'ok', text: 'Done.', thinking: { text: 'Let me look.', signature: 'sig-abc' } });
    const system: Anthropic.Beta.BetaTextBlockParam[] = [
      { type: 'text', text: "You are Claude Code, Anthropic's official CLI for Claude." },
      { type: 'text', text: 'Project instructions...', cache_control: { type: 'ephemeral' } },
    ];
    const tools: Anthropic.Beta.BetaToolUnion[] = [
      { name: 'Bash', description: 'Run a command', input_schema: { type: 'object', properties: { command: { type: 'string' } }, required: ['command'] } },
      { name: 'Read', description: 'Read a file', input_schema: { type: 'object', properties: { file_path: { type: 'string' } } }, cache_control: { type: 'ephemeral' } },
    ];
    const messages: Anthropic.Beta.BetaMessageParam[] = [{ role: 'user', content: [{ type: 'text', text: 'fix the failing test', cache_control: { type: 'ephemeral' } }] }];
    const betas = ['claude-code-20250219', 'interleaved-thinking-2025-05-14', 'fine-grained-tool-streaming-2025-05-14'];
    const stream = anthropic.beta.messages.stream({
      model: 'claude', max_tokens: 32000, system, tools, messages, betas,
      thinking: { type: 'enabled', budget_tokens: 10000 }, metadata: { user_id: 'user_abc_account_def_session_ghi' }, temperature: 1,
    } as unknown as Anthropic.Beta.MessageCreateParams, { query: { beta: 'true' } });
    const final = await stream.finalMessage();
    assert.deepEqual(final.content.map((b) => b.type), ['thinking', 'text']);
    assert.equal((final.content[0] as Anthropic.Beta.BetaThinkingBlock).signature, 'sig-abc');
    assert.ok(final.usage.input_tokens > 0);
    const req = an.requests[0]!;
    assert.equal(req.path, '/v1/messages?beta=true');
    assert.equal(req.headers['anthropic-beta'], betas.join(','));
    const body = req.body as Record<string, unknown>;
    assert.deepEqual(body.system, system);
    assert.deepEqual(body.tools, tools);
    assert.deepEqual(body.messages, messages);
    assert.deepEqual(body.thinking, { type: 'enabled', budget_tokens: 10000 });
    assert.deepEqual(body.metadata, { user_id: 'user_abc_account_def_session_ghi' });
    assert.equal(body.stream, true);
    assert.equal(body.max_tokens, 32000);
    assert.equal(body.temperature, 1);
  });

  test('thinking blocks with signatures go back upstream in the next turn', async () => {
    const r = await postJson(`${gw.url}/v1/messages`, {
      model: 'claude', max_tokens: 2000, thinking: { type: 'enabled', budget_tokens: 1024 },
      messages: [
        { role: 'user', content: 'q1' },
        { role: 'assistant', content: [{ type: 'thinking', thinking: 'hmm', signature: 'sig-1' }, { type: 'redacted_thinking', data: 'xyz' }, { type: 'text', text: 'a1' }] },
        { role: 'user', content: 'q2' },
      ],
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual((an.requests[0]!.body as any).messages[1].content, [{ type: 'thinking', thinking: 'hmm', signature: 'sig-1' }, { type: 'redacted_thinking', data: 'xyz' }, { type: 'text', text: 'a1' }]);
  });

  test('a Cursor-shaped request (OpenAI tools, stream, stream_options) reaches the upstream with everything it carried', async () => {
    oa.enqueue({ kind: 'ok', toolCalls: [{ id: 'call_x', name: 'read_file', arguments: { path: 'a.ts' } }] });
    const tools: OpenAI.ChatCompletionTool[] = [
      { type: 'function', function: { name: 'read_file', description: 'Read a file', parameters: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] }, strict: false } },
      { type: 'function', function: { name: 'edit_file', parameters: { type: 'object', properties: {} } } },
    ];
    const stream = await openai.chat.completions.create({
      model: 'gpt', stream: true, stream_options: { include_usage: true }, tools, tool_choice: 'auto', parallel_tool_calls: false, temperature: 0,
      messages: [{ role: 'system', content: 'You are a coding agent' }, { role: 'user', content: 'open a.ts' }],
    });
    const calls: Record<number, { id?: string; name?: string; args: string }> = {};
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      usage = chunk.usage ?? usage;
      for (const c of chunk.choices[0]?.delta.tool_calls ?? []) {
        const acc = (calls[c.index] ??= { args: '' });
        acc.id ??= c.id;
        acc.name ??= c.function?.name;
        acc.args += c.function?.arguments ?? '';
      }
    }
    assert.deepEqual(calls, { 0: { id: 'call_x', name: 'read_file', args: '{"path":"a.ts"}' } });
    assert.ok(usage && usage.total_tokens > 0);
    const body = oa.requests[0]!.body as Record<string, unknown>;
    assert.deepEqual(body.tools, tools);
    assert.equal(body.stream, true);
    assert.deepEqual(body.stream_options, { include_usage: true });
    assert.equal(body.tool_choice, 'auto');
    assert.equal(body.parallel_tool_calls, false);
    assert.equal(body.temperature, 0);
  });

  test('unknown fields pass through to the same format untouched', async () => {
    await postJson(`${gw.url}/v1/chat/completions`, { model: 'gpt', messages: [{ role: 'user', content: 'hi', some_future_flag: 1 }], prediction: { type: 'content', content: 'x' }, web_search_options: {} });
    const body = oa.requests[0]!.body as Record<string, any>;
    assert.deepEqual(body.prediction, { type: 'content', content: 'x' });
    assert.deepEqual(body.web_search_options, {});
    assert.equal(body.messages[0].some_future_flag, 1);
    await postJson(`${gw.url}/v1/messages`, { model: 'claude', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'text', text: 'hi', citations: null }] }], container: 'c-1' });
    const abody = an.requests[0]!.body as Record<string, any>;
    assert.equal(abody.container, 'c-1');
  });

  test('cached and reasoning tokens come back in both formats, plain and streamed, and message_start carries input tokens', async () => {
    oa.enqueue({ kind: 'ok', text: 'x', usage: { cacheRead: 6, reasoning: 3 } });
    const r = await openai.chat.completions.create({ model: 'gpt', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.usage!.prompt_tokens_details!.cached_tokens, 6);
    assert.equal(r.usage!.completion_tokens_details!.reasoning_tokens, 3);

    an.enqueue({ kind: 'ok', text: 'y', usage: { cacheRead: 40, cacheWrite: 10 } });
    const m = await anthropic.messages.create({ model: 'claude', max_tokens: 10, messages: [{ role: 'user', content: 'hello there' }] });
    assert.equal(m.usage.cache_read_input_tokens, 40);
    assert.equal(m.usage.cache_creation_input_tokens, 10);
    const upstreamInput = (an.requests[0]!.body as any) && m.usage.input_tokens;
    assert.ok(upstreamInput > 0);

    an.enqueue({ kind: 'ok', text: 'z', usage: { cacheRead: 40 } });
    const events: Anthropic.MessageStreamEvent[] = [];
    const s = anthropic.messages.stream({ model: 'claude', max_tokens: 10, messages: [{ role: 'user', content: 'hello there' }] });
    s.on('streamEvent', (e) => events.push(e));
    const final = await s.finalMessage();
    const start = events.find((e) => e.type === 'message_start') as Anthropic.MessageStartEvent;
    assert.equal(start.message.usage.input_tokens, m.usage.input_tokens);
    assert.equal(start.message.usage.cache_read_input_tokens, 40);
    assert.equal(final.usage.cache_read_input_tokens, 40);

    // From an OpenAI upstream the input count is only known at the end: message_start has an estimate.
    const events2: Anthropic.MessageStreamEvent[] = [];
    const s2 = anthropic.messages.stream({ model: 'gpt', max_tokens: 10, messages: [{ role: 'user', content: 'hello there' }] });
    s2.on('streamEvent', (e) => events2.push(e));
    await s2.finalMessage();
    const start2 = events2.find((e) => e.type === 'message_start') as Anthropic.MessageStartEvent;
    assert.ok(start2.message.usage.input_tokens > 0);
  });

  test('auto skips a candidate that cannot carry a field (parallel_tool_calls: false to Gemini) and _routing says so', async () => {
    const r = await postJson(`${gw.url}/v1/chat/completions`, { model: 'auto', messages: [{ role: 'user', content: 'hi' }], tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }], parallel_tool_calls: false });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body._actual_model_used, 'claude');
    assert.deepEqual(r.body._routing.excluded, [{ model: 'gem', provider: 'gemini', cannot_carry: 'parallel_tool_calls' }]);
    assert.match(r.body._routing.reason, /skipped gem/);
    assert.equal(ge.requests.length, 0);
  });

  test('an explicit model that cannot carry a field is a 400 naming the model and the field', async () => {
    const r = await postJson(`${gw.url}/v1/chat/completions`, { model: 'gem', messages: [{ role: 'user', content: 'hi' }], tools: [{ type: 'function', function: { name: 'f' } }], parallel_tool_calls: false });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.param, 'parallel_tool_calls');
    assert.match(r.body.error.message, /'gem' \(gemini\) cannot take this request: parallel_tool_calls/);
  });
});
