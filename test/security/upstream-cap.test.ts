// UPSTREAM_MAX_BYTES caps what is read from an upstream, plain or streamed: past it the gateway
// drops the upstream connection, answers 502 naming the limit (or ends a started stream with an
// error naming it), and its memory stays flat however much the upstream would have sent.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { startRawUpstream } from '../standins/common.ts';
import { startGateway, model, postJson, type TestGateway } from '../helpers/gateway.ts';
import { heapAfterGc } from '../helpers/load.ts';

const LIMIT = 256 * 1024;
/** What each hostile upstream would send in all, if nobody stopped reading. */
const HUGE = 300 * 1024 * 1024;

interface Sent { bytes: number; closedEarly: boolean }

/** Write `total` bytes of `chunk` repeated, honouring back-pressure; records how far it got. */
function pump(res: ServerResponse, first: string, chunk: string, total: number, sent: Sent): void {
  sent.bytes = 0;
  sent.closedEarly = false;
  res.on('close', () => { if (sent.bytes < total) sent.closedEarly = true; });
  const write = () => {
    while (sent.bytes < total && !res.destroyed) {
      const piece = sent.bytes === 0 ? first : chunk;
      sent.bytes += piece.length;
      if (!res.write(piece)) return void res.once('drain', write);
    }
    if (!res.destroyed) res.end();
  };
  write();
}

describe('UPSTREAM_MAX_BYTES', () => {
  let gw: TestGateway;
  let up: { url: string; close(): Promise<void> };
  const sent: Sent = { bytes: 0, closedEarly: false };
  let mode: 'json' | 'declared' | 'sse' | 'small' = 'json';

  before(async () => {
    up = await startRawUpstream((req, res) => {
      req.resume();
      if (mode === 'declared') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(HUGE) });
        return pump(res, '{"id":"x","choices":[{"message":{"role":"assistant","content":"', 'a'.repeat(64 * 1024), HUGE, sent);
      }
      if (mode === 'small') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ id: 'x', object: 'chat.completion', model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'small enough' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } }));
      }
      if (mode === 'sse') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const event = `data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', model: 'm', choices: [{ index: 0, delta: { content: 'b'.repeat(8000) }, finish_reason: null }] })}\n\n`;
        return pump(res, event, event, HUGE, sent);
      }
      // A chunked JSON answer with no length: only counting bytes can stop it.
      res.writeHead(200, { 'content-type': 'application/json' });
      pump(res, '{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"', 'a'.repeat(64 * 1024), HUGE, sent);
    });
    gw = await startGateway({ models: [model('big', 'openai', up.url)], env: { TEST_KEY: 'sk-test-cap-0001', UPSTREAM_MAX_BYTES: String(LIMIT), MAX_RETRIES: '0', BREAKER_FAILURES: '100', UPSTREAM_TIMEOUT_MS: '20000', REQUEST_TIMEOUT_MS: '30000' } });
  });
  after(async () => {
    await gw?.close();
    await up?.close();
  });

  const chat = (stream = false) => ({ model: 'big', stream, messages: [{ role: 'user', content: 'send me everything' }] });

  test('a 300 MB plain answer without a length: 502 naming the limit, upstream connection closed, memory flat', async () => {
    mode = 'json';
    const heapBefore = heapAfterGc();
    const rssBefore = process.memoryUsage().rss;
    const r = await postJson(`${gw.url}/v1/chat/completions`, chat());
    assert.equal(r.status, 502, JSON.stringify(r.body).slice(0, 300));
    assert.match(r.body.error.message, new RegExp(`larger than the limit of ${LIMIT} bytes \\(UPSTREAM_MAX_BYTES\\)`));
    await new Promise((res) => setTimeout(res, 100));
    assert.ok(sent.closedEarly, 'the gateway closed the upstream connection');
    assert.ok(sent.bytes < 64 * 1024 * 1024, `the upstream got to write only ${sent.bytes} bytes`);
    assert.ok(heapAfterGc() - heapBefore < 32 * 1024 * 1024, 'heap did not grow with the answer');
    assert.ok(process.memoryUsage().rss - rssBefore < 200 * 1024 * 1024, 'RSS did not grow with the answer');
  });

  test('a declared Content-Length over the limit is refused before the body is read', async () => {
    mode = 'declared';
    const r = await postJson(`${gw.url}/v1/chat/completions`, chat());
    assert.equal(r.status, 502);
    assert.match(r.body.error.message, /UPSTREAM_MAX_BYTES/);
  });

  test('a stream counts too: it ends with an error naming the limit and the upstream is cut off', async () => {
    mode = 'sse';
    const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(chat(true)) });
    const text = await res.text();
    assert.equal(res.status, 200, 'the stream had started');
    assert.ok(text.length < LIMIT * 2, `relayed ${text.length} chars, not the whole upstream stream`);
    assert.match(text, /UPSTREAM_MAX_BYTES/);
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(sent.closedEarly, 'the gateway closed the upstream connection');
  });

  test('answers under the limit pass as before', async () => {
    mode = 'small';
    const r = await postJson(`${gw.url}/v1/chat/completions`, chat());
    assert.equal(r.status, 200);
    assert.equal(r.body.choices[0].message.content, 'small enough');
  });
});
