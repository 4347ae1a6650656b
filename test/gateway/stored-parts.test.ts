// Stored requests keep their content parts, tools and tool calls (queries.parts_json), and the
// admin decision page shows them, escaped: tool round trips through the official openai and
// @anthropic-ai/sdk clients (with an image part), other endpoints, the size bound, and rows from
// before the column (SQLite schema version 5) still readable.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startOpenAIStandIn } from '../standins/openai.ts';
import { startAnthropicStandIn } from '../standins/anthropic.ts';
import type { StandIn } from '../standins/common.ts';
import { model, postJson, startGateway, type TestGateway } from '../helpers/gateway.ts';
import { createAdminApp, type AdminContext } from '../../server/admin/index.ts';
import { AdminClient, ADMIN_TOKEN } from '../admin/harness.ts';
import { Db } from '../../server/store/sqlite/db.ts';
import { migrate, migrations } from '../../server/store/sqlite/migrations.ts';
import { MAX_PARTS_BYTES } from '../../server/store/parts.ts';

const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
const PNG_BYTES = Buffer.from(PNG, 'base64').length;
const HOSTILE = '<script>alert(1)</script>';

const weatherTool: OpenAI.ChatCompletionTool = {
  type: 'function',
  function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};
const anthropicWeatherTool: Anthropic.Tool = { name: 'get_weather', description: 'Weather for a city', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };

/** The admin app on the gateway's own services, and a logged-in client. */
async function startAdmin(gw: TestGateway): Promise<{ client: AdminClient; close(): Promise<void> }> {
  const { app, ctx }: { app: ReturnType<typeof createAdminApp>['app']; ctx: AdminContext } = createAdminApp(gw.services);
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const client = new AdminClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  await client.login(ADMIN_TOKEN);
  return {
    client,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await ctx.runner.idle();
    },
  };
}

async function storedPartsJson(gw: TestGateway, id: string): Promise<string | null> {
  const rows = await gw.services.store.all<{ parts_json: string | null }>('SELECT parts_json FROM queries WHERE id = ?', [id]);
  return rows[0]?.parts_json ?? null;
}

describe('stored content parts and tool calls', () => {
  let oa: StandIn;
  let an: StandIn;
  let gw: TestGateway;
  let admin: { client: AdminClient; close(): Promise<void> };
  let openai: OpenAI;
  let anthropic: Anthropic;

  before(async () => {
    oa = await startOpenAIStandIn();
    an = await startAnthropicStandIn();
    gw = await startGateway({ models: [model('gpt', 'openai', oa.url), model('claude', 'anthropic', an.url)], env: { TEST_KEY: 'test-key-abcdef', ADMIN_TOKEN } });
    admin = await startAdmin(gw);
    openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    anthropic = new Anthropic({ baseURL: gw.url, apiKey: 'unused', maxRetries: 0 });
  });
  after(async () => {
    await admin.close();
    await gw.close();
    await Promise.all([oa.close(), an.close()]);
  });
  beforeEach(() => {
    oa.reset();
    an.reset();
  });

  test('openai client: a tool round trip is stored with tools, tool_choice, the call, its result and finish reasons, and shown on the admin page', async () => {
    oa.enqueue({ kind: 'ok', toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: { city: 'Paris' } }] }, { kind: 'ok', text: 'It is sunny in Paris.' });
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Weather in Paris?' }];
    const first = await openai.chat.completions.create({ model: 'gpt', messages, tools: [weatherTool], tool_choice: 'auto' }).withResponse();
    const call = first.data.choices[0]!.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
    messages.push(first.data.choices[0]!.message, { role: 'tool', tool_call_id: call.id, content: `{"sky":"clear","note":${JSON.stringify(HOSTILE)}}` });
    const second = await openai.chat.completions.create({ model: 'gpt', messages, tools: [weatherTool] }).withResponse();
    assert.equal(second.data.choices[0]!.message.content, 'It is sunny in Paris.');
    await gw.services.store.flush();

    const id1 = first.response.headers.get('x-request-id')!;
    const id2 = second.response.headers.get('x-request-id')!;
    const one = await gw.services.store.getRequest(id1);
    assert.deepEqual(one?.parts?.tools, [{ name: 'get_weather', parameters: JSON.stringify(weatherTool.function.parameters) }]);
    assert.deepEqual(one?.parts?.toolChoice, { type: 'auto' });
    assert.deepEqual(one?.parts?.messages, [
      { role: 'system', parts: [{ type: 'text', text: 'Be brief.', chars: 9 }] },
      { role: 'user', parts: [{ type: 'text', text: 'Weather in Paris?', chars: 17 }] },
    ]);
    assert.deepEqual(one?.parts?.answer, { toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}', chars: 16 }], finishReason: 'tool_calls' });

    const two = await gw.services.store.getRequest(id2);
    const [, , assistant, tool] = two!.parts!.messages;
    assert.deepEqual(assistant, { role: 'assistant', parts: [{ type: 'tool_call', id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}', chars: 16 }] });
    assert.equal(tool?.role, 'tool');
    assert.deepEqual(tool?.parts.map((p) => p.type === 'tool_result' && [p.toolCallId, p.content.includes(HOSTILE)]), [['call_1', true]]);
    assert.deepEqual(two?.parts?.answer, { toolCalls: [], finishReason: 'stop' });

    // The admin page shows the call and the result, escaped.
    const page = await admin.client.get(`/decisions/${encodeURIComponent(id2)}`);
    assert.equal(page.status, 200);
    assert.match(page.text, /data-testid="parts"/);
    assert.match(page.text, /data-part="tool_call">tool call <code>get_weather<\/code>/);
    assert.match(page.text, /tool result for <span class="muted small">id<\/span> <code>call_1<\/code>/);
    assert.ok(!page.text.includes(HOSTILE), 'the tool result is escaped');
    assert.ok(page.text.includes('&lt;script&gt;'));
    assert.match(page.text, /Finish reason: <code>stop<\/code>/);
    const firstPage = await admin.client.get(`/decisions/${encodeURIComponent(id1)}`);
    assert.match(firstPage.text, /data-testid="answer-tool-calls"/);
    assert.match(firstPage.text, /tool_choice: auto/);
    assert.match(firstPage.text, /Finish reason: <code>tool_calls<\/code>/);
  });

  test('anthropic client: a streamed tool round trip with an image part stores the image as type, source and size only', async () => {
    an.enqueue({ kind: 'ok', toolCalls: [{ id: 'toolu_1', name: 'get_weather', arguments: { city: 'Oslo' } }] }, { kind: 'ok', text: 'Snow in Oslo.' });
    const messages: Anthropic.MessageParam[] = [{
      role: 'user',
      content: [
        { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
        { type: 'text', text: 'Where is this, and what is the weather there?' },
      ],
    }];
    const stream = anthropic.messages.stream({ model: 'claude', max_tokens: 200, messages, tools: [anthropicWeatherTool], tool_choice: { type: 'tool', name: 'get_weather' } });
    const firstMessage = await stream.finalMessage();
    const id1 = (await stream.withResponse()).response.headers.get('x-request-id')!;
    const use = firstMessage.content.find((b) => b.type === 'tool_use')!;
    assert.equal(firstMessage.stop_reason, 'tool_use');
    messages.push({ role: 'assistant', content: firstMessage.content }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: [{ type: 'text', text: 'snow, -3 C' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } }] }] });
    const second = await anthropic.messages.create({ model: 'claude', max_tokens: 200, messages, tools: [anthropicWeatherTool] }).withResponse();
    assert.equal(second.data.stop_reason, 'end_turn');
    await gw.services.store.flush();

    const one = await gw.services.store.getRequest(id1);
    assert.equal(one?.stream, true);
    assert.deepEqual(one?.parts?.messages[0]?.parts, [
      { type: 'image', mediaType: 'image/png', source: 'base64', bytes: PNG_BYTES },
      { type: 'text', text: 'Where is this, and what is the weather there?', chars: 45 },
    ]);
    assert.deepEqual(one?.parts?.toolChoice, { type: 'tool', name: 'get_weather' });
    assert.deepEqual(one?.parts?.answer, { toolCalls: [{ id: 'toolu_1', name: 'get_weather', arguments: '{"city":"Oslo"}', chars: 15 }], finishReason: 'tool_calls' });

    const id2 = second.response.headers.get('x-request-id')!;
    const two = await gw.services.store.getRequest(id2);
    const result = two?.parts?.messages.at(-1)?.parts[0];
    assert.deepEqual(result, { type: 'tool_result', toolCallId: 'toolu_1', content: 'snow, -3 C', chars: 10, media: [{ type: 'image', mediaType: 'image/png', source: 'base64', bytes: PNG_BYTES }] });
    // The image data itself is never stored.
    for (const id of [id1, id2]) {
      const raw = await storedPartsJson(gw, id);
      assert.ok(raw && !raw.includes(PNG.slice(0, 24)), 'no base64 payload in parts_json');
    }

    const page = await admin.client.get(`/decisions/${encodeURIComponent(id1)}`);
    assert.equal(page.status, 200);
    assert.match(page.text, /data-part="image"><span class="tag">image · image\/png · base64 · \d+ bytes<\/span>/);
    assert.ok(!page.text.includes(PNG.slice(0, 24)));
    assert.match(page.text, /tool_choice: get_weather/);
  });

  test('openai client: streamed tool calls with long arguments store their start and full length', async () => {
    const city = 'y'.repeat(3_000);
    oa.enqueue({ kind: 'ok', toolCalls: [{ id: 'call_s', name: 'get_weather', arguments: { city } }] });
    const stream = openai.chat.completions.stream({ model: 'gpt', messages: [{ role: 'user', content: 'Weather?' }], tools: [weatherTool] });
    const done = await stream.finalChatCompletion();
    assert.equal(done.choices[0]!.finish_reason, 'tool_calls');
    await gw.services.store.flush();
    const [row] = await gw.services.store.listRequests({ limit: 1 });
    const stored = await gw.services.store.getRequest(row!.id);
    const call = stored?.parts?.answer?.toolCalls[0];
    assert.equal(call?.id, 'call_s');
    assert.equal(call?.arguments, JSON.stringify({ city }).slice(0, 2_000));
    assert.equal(call?.chars, JSON.stringify({ city }).length);
    assert.equal(stored?.parts?.answer?.finishReason, 'tool_calls');
  });

  test('/v1/responses and /api/chat store their parts too; a huge conversation is bounded and keys are redacted', async () => {
    oa.enqueue({ kind: 'ok', text: 'fine' });
    const responses = await postJson(`${gw.url}/v1/responses`, {
      model: 'gpt', input: [{ role: 'user', content: 'Weather in Oslo?' }, { type: 'function_call', call_id: 'call_9', name: 'get_weather', arguments: '{"city":"Oslo"}' }, { type: 'function_call_output', call_id: 'call_9', output: 'snow' }],
      tools: [{ type: 'function', name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } }],
    });
    assert.equal(responses.status, 200);
    const chat = await postJson(`${gw.url}/api/chat`, { message: 'my key is sk-ant-abcdefghijklmnop, hello', model: 'gpt' });
    assert.equal(chat.status, 200);
    const long = 'x'.repeat(3_000);
    const big = await postJson(`${gw.url}/v1/chat/completions`, {
      model: 'gpt',
      messages: Array.from({ length: 120 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `${i} ${long}` })),
    });
    assert.equal(big.status, 200);
    await gw.services.store.flush();

    const r = await gw.services.store.getRequest(responses.headers.get('x-request-id')!);
    assert.equal(r?.endpoint, '/v1/responses');
    assert.deepEqual(r?.parts?.messages.flatMap((m) => m.parts.map((p) => p.type)), ['text', 'tool_call', 'tool_result']);
    assert.deepEqual(r?.parts?.tools?.map((t) => t.name), ['get_weather']);

    const c = await gw.services.store.getRequest(chat.headers.get('x-request-id')!);
    assert.deepEqual(c?.parts?.messages.at(-1)?.parts, [{ type: 'text', text: 'my key is [redacted], hello', chars: 40 }]);

    const bigId = big.headers.get('x-request-id')!;
    const raw = await storedPartsJson(gw, bigId);
    assert.ok(raw !== null && Buffer.byteLength(raw) <= MAX_PARTS_BYTES, `parts_json is ${raw?.length} bytes`);
    const b = await gw.services.store.getRequest(bigId);
    assert.ok((b?.parts?.omittedMessages ?? 0) > 0);
    assert.equal((b?.parts?.omittedMessages ?? 0) + (b?.parts?.messages.length ?? 0), 120);
    // The newest messages are the ones kept, each text cut short.
    const lastText = b?.parts?.messages.at(-1)?.parts[0];
    assert.ok(lastText?.type === 'text' && lastText.text.startsWith('119 ') && lastText.text.length === 2_000 && lastText.chars === 3_004);
    const page = await admin.client.get(`/decisions/${encodeURIComponent(bigId)}`);
    assert.match(page.text, /data-testid="omitted-messages"/);
  });
});

describe('rows stored before parts_json', () => {
  test('a SQLite database at schema version 5 migrates; its rows read parts null and the admin page still shows them', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'switchyard-parts-'));
    try {
      const db = await Db.open(path.join(dataDir, 'switchyard.db'));
      await migrate(db, migrations.filter((m) => m.version <= 5));
      const features = JSON.stringify({ language: 'en', mixed: false, domain: 'chat', complexity: 'simple', lengthBucket: 's', chars: 12, hasCode: false, depth: 1 });
      await db.run(`INSERT INTO queries (id, ts, endpoint, query_text, message_count, stream, language, domain, complexity,
        features_json, final_model, status, http_status, latency_ms, answer, calls_json)
        VALUES ('old-1', 5000, '/v1/chat/completions', 'an old question', 1, 0, 'en', 'chat', 'simple', ?, 'demo-fast', 'ok', 200, 120, 'an old answer', '[]')`, [features]);
      await db.close();

      const gw = await startGateway({ dataDir, env: { ADMIN_TOKEN } });
      const admin = await startAdmin(gw);
      try {
        const versions = await gw.services.store.all<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
        assert.deepEqual(versions.map((v) => v.version), migrations.map((m) => m.version));
        const old = await gw.services.store.getRequest('old-1');
        assert.equal(old?.queryText, 'an old question');
        assert.equal(old?.answer, 'an old answer');
        assert.equal(old?.parts, null);
        const page = await admin.client.get('/decisions/old-1');
        assert.equal(page.status, 200);
        assert.match(page.text, /data-testid="no-parts"/);
        assert.match(page.text, /an old answer/);

        // A new request beside it stores its parts.
        const r = await postJson(`${gw.url}/v1/chat/completions`, { model: 'auto', messages: [{ role: 'user', content: 'hello there' }] });
        assert.equal(r.status, 200);
        await gw.services.store.flush();
        const fresh = await gw.services.store.getRequest(r.headers.get('x-request-id')!);
        assert.deepEqual(fresh?.parts?.messages, [{ role: 'user', parts: [{ type: 'text', text: 'hello there', chars: 11 }] }]);
        assert.deepEqual((await gw.services.store.listRequests({})).map((x) => x.id).includes('old-1'), true);
      } finally {
        await admin.close();
        await gw.stop();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
