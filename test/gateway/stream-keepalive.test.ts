// Idle timeout vs keep-alive frames: an Anthropic stream that pauses its content but keeps sending
// `ping` events is alive and must not be cut; one that goes fully silent is cut with an error event.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { startRawUpstream } from '../standins/common.ts';
import { startGateway, model, type TestGateway } from '../helpers/gateway.ts';

const ev = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
const delta = (text: string) => ev('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } });

describe('stream idle timeout', () => {
  let mode: 'ping' | 'silent' = 'ping';
  let up: { url: string; close(): Promise<void> };
  let gw: TestGateway;

  before(async () => {
    up = await startRawUpstream(async (req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(ev('message_start', { type: 'message_start', message: { id: 'm', type: 'message', role: 'assistant', model: 'x', content: [], usage: { input_tokens: 3, output_tokens: 0 } } }));
      res.write(ev('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }));
      res.write(delta('thinking '));
      // 1.2 s without content, idle timeout 600 ms: pings every 200 ms, or nothing at all.
      for (let i = 0; i < 6; i++) {
        await delay(200);
        if (res.destroyed) return;
        if (mode === 'ping') res.write(ev('ping', { type: 'ping' }));
      }
      res.write(delta('done'));
      res.write(ev('content_block_stop', { type: 'content_block_stop', index: 0 }));
      res.write(ev('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 2 } }));
      res.end(ev('message_stop', { type: 'message_stop' }));
    });
    gw = await startGateway({ models: [model('claude', 'anthropic', up.url)], env: { TEST_KEY: 'k-test-123456', UPSTREAM_TIMEOUT_MS: '600' } });
  });
  after(async () => {
    await gw.close();
    await up.close();
  });

  const stream = async () => {
    const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'claude', stream: true, messages: [{ role: 'user', content: 'slow thinker' }] }) });
    return res.text();
  };

  test('pings keep a paused stream alive to its end', async () => {
    mode = 'ping';
    const text = await stream();
    assert.match(text, /"content":"thinking "/);
    assert.match(text, /"content":"done"/);
    assert.match(text, /data: \[DONE\]/);
  });

  test('a silent upstream is cut after the idle timeout with an error event', async () => {
    mode = 'silent';
    const text = await stream();
    assert.match(text, /"content":"thinking "/);
    assert.match(text, /"error":\{"message":"upstream stream failed/);
    assert.doesNotMatch(text, /"content":"done"/);
  });
});
