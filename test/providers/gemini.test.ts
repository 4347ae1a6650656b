// The Gemini adapter's wire details: URLs with the model and method, key in a header (never the
// URL), roles user/model, systemInstruction, generationConfig, blocked prompts and thought parts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GeminiProvider } from '../../server/providers/gemini.ts';
import type { StreamPart } from '../../server/providers/types.ts';
import { collect, startRawUpstream } from '../standins/common.ts';
import type { StandIn } from '../standins/common.ts';
import { startGeminiStandIn } from '../standins/gemini.ts';

const provider = new GeminiProvider();
const KEY = 'AIzaTestKey0123456789';

describe('Gemini adapter request shape', () => {
  let standIn: StandIn;
  before(async () => (standIn = await startGeminiStandIn({ apiKey: KEY })));
  after(() => standIn.close());

  test('chat maps roles to user/model, system to systemInstruction and params to generationConfig', async () => {
    const result = await provider.chat({ baseUrl: standIn.url, upstreamModel: 'gemini-2.0-flash', apiKey: KEY }, {
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello!' },
        { role: 'user', content: 'Weather?' },
      ],
      temperature: 0.3, maxTokens: 100, topP: 0.95, stop: ['END'],
    }, AbortSignal.timeout(5000));
    assert.equal(result.content, 'reply from gemini-2.0-flash: Weather?');
    const req = standIn.requests.at(-1)!;
    assert.equal(req.path, '/v1beta/models/gemini-2.0-flash:generateContent');
    assert.equal(req.headers['x-goog-api-key'], KEY);
    assert.ok(!req.path.includes(KEY), 'the key never goes in the URL');
    assert.deepEqual(req.body, {
      contents: [
        { role: 'user', parts: [{ text: 'Hi' }] },
        { role: 'model', parts: [{ text: 'Hello!' }] },
        { role: 'user', parts: [{ text: 'Weather?' }] },
      ],
      systemInstruction: { parts: [{ text: 'Be brief.' }] },
      generationConfig: { temperature: 0.3, maxOutputTokens: 100, topP: 0.95, stopSequences: ['END'] },
    });
  });

  test('stream uses streamGenerateContent with alt=sse and accepts a models/ prefixed name', async () => {
    const parts = await collect(provider.stream({ baseUrl: standIn.url, upstreamModel: 'models/gemini-2.0-flash', apiKey: KEY }, { messages: [{ role: 'user', content: 'Hi' }] }, AbortSignal.timeout(5000)));
    assert.equal(parts.at(-1)?.type, 'finish');
    const req = standIn.requests.at(-1)!;
    assert.equal(req.path, '/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse');
    assert.deepEqual(req.body, { contents: [{ role: 'user', parts: [{ text: 'Hi' }] }] });
  });

  test('a missing key gets Google\'s 403 PERMISSION_DENIED', async () => {
    await assert.rejects(provider.chat({ baseUrl: standIn.url, upstreamModel: 'gemini-2.0-flash' }, { messages: [{ role: 'user', content: 'Hi' }] }, AbortSignal.timeout(5000)), (err: Error & { status?: number }) => {
      assert.equal(err.status, 403);
      assert.match(err.message, /PERMISSION_DENIED/);
      return true;
    });
  });

  test('listModels strips the models/ prefix', async () => {
    assert.deepEqual(await provider.listModels({ baseUrl: standIn.url, upstreamModel: 'x', apiKey: KEY }, AbortSignal.timeout(5000)), ['gemini-2.0-flash', 'text-embedding-004']);
    assert.equal(standIn.requests.at(-1)!.path, '/v1beta/models?pageSize=1000');
  });
});

describe('Gemini adapter response details', () => {
  let server: { url: string; close(): Promise<void> };
  let reply = '';
  let contentType = 'application/json';
  before(async () => {
    server = await startRawUpstream((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': contentType });
        res.end(reply);
      });
    });
  });
  after(() => server.close());
  const endpoint = () => ({ baseUrl: server.url, upstreamModel: 'gemini-2.5-flash', apiKey: KEY });

  test('a blocked prompt (no candidates) is an empty content_filter answer', async () => {
    contentType = 'application/json';
    reply = JSON.stringify({ promptFeedback: { blockReason: 'SAFETY' }, usageMetadata: { promptTokenCount: 9, totalTokenCount: 9 } });
    const result = await provider.chat(endpoint(), { messages: [{ role: 'user', content: 'x' }] }, AbortSignal.timeout(5000));
    assert.deepEqual(result, { content: '', finishReason: 'content_filter', usage: { inputTokens: 9, outputTokens: 0 } });
  });

  test('thought parts are not content, but thinking tokens count as output', async () => {
    contentType = 'application/json';
    reply = JSON.stringify({
      candidates: [{ content: { role: 'model', parts: [{ text: 'pondering', thought: true }, { text: 'Paris' }] }, finishReason: 'STOP' }],
      usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 1, thoughtsTokenCount: 20 },
      modelVersion: 'gemini-2.5-flash',
    });
    const result = await provider.chat(endpoint(), { messages: [{ role: 'user', content: 'x' }] }, AbortSignal.timeout(5000));
    assert.deepEqual(result, { content: 'Paris', finishReason: 'stop', usage: { inputTokens: 5, outputTokens: 21 }, upstreamModel: 'gemini-2.5-flash' });
  });

  test('a SAFETY finish mid-stream ends the stream with content_filter', async () => {
    contentType = 'text/event-stream';
    reply = `data: ${JSON.stringify({ candidates: [{ content: { role: 'model', parts: [{ text: 'Some' }] } }] })}\r\n\r\n` +
      `data: ${JSON.stringify({ candidates: [{ content: { role: 'model', parts: [] }, finishReason: 'SAFETY' }], usageMetadata: { promptTokenCount: 2, candidatesTokenCount: 1 } })}\r\n\r\n`;
    const parts = await collect(provider.stream(endpoint(), { messages: [{ role: 'user', content: 'x' }] }, AbortSignal.timeout(5000)));
    assert.deepEqual(parts, [
      { type: 'delta', text: 'Some' },
      { type: 'finish', finishReason: 'content_filter', usage: { inputTokens: 2, outputTokens: 1 } },
    ]);
  });
});
