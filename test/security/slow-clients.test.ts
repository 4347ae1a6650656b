// Slow clients (slow-loris): the real process, started from server/main.ts, gives a client
// HTTP_HEADERS_TIMEOUT_MS for its headers and HTTP_REQUEST_TIMEOUT_MS for its whole request, on
// the proxy port and the admin port alike; past them it answers 408 and closes the connection.
// Answers slower than those bounds (plain or streamed) and idle keep-alive connections are not cut.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startOpenAIStandIn } from '../standins/openai.ts';
import type { StandIn } from '../standins/common.ts';
import { model } from '../helpers/gateway.ts';
import { spawnSwitchyard, type SwitchyardProcess } from '../helpers/load.ts';
import { loadConfig, ConfigError } from '../../server/config.ts';

const HEADERS_MS = 400;
const REQUEST_MS = 1000;
/** How long a test keeps trickling before it gives up: Node's own defaults (60 s / 300 s) would never cut it by then. */
const GIVE_UP_MS = 10_000;

interface Trickled { status: string | null; closedByServer: boolean; sentBytes: number; ms: number }

/**
 * Send `head` and then `drip` one byte at a time every 100 ms (never finishing), until the server
 * closes the connection or GIVE_UP_MS passes. Returns the status line the server sent, if any.
 */
function trickle(port: number, head: string, drip: string): Promise<Trickled> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    let sentBytes = 0;
    let i = 0;
    let timer: NodeJS.Timeout | undefined;
    let closedByServer = true;
    const giveUp = setTimeout(() => { closedByServer = false; socket.destroy(); }, GIVE_UP_MS);
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => { received += d; });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(timer);
      clearTimeout(giveUp);
      resolve({ status: /^HTTP\/1\.1 (\d{3})/.exec(received)?.[1] ?? null, closedByServer, sentBytes, ms: performance.now() - t0 });
    });
    socket.on('connect', () => {
      socket.write(head);
      sentBytes += head.length;
      timer = setInterval(() => {
        if (socket.destroyed) return;
        socket.write(drip[i++ % drip.length]!);
        sentBytes += 1;
      }, 100);
    });
  });
}

const bodyHead = (path: string, type: string) =>
  `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${type}\r\nContent-Length: 100000\r\n\r\n`;

describe('slow clients against the real process', () => {
  let upstream: StandIn;
  let proc: SwitchyardProcess;
  before(async () => {
    upstream = await startOpenAIStandIn({ behaviour: { kind: 'ok', delayMs: REQUEST_MS + 500 } });
    proc = await spawnSwitchyard({
      models: [model('slow', 'openai', upstream.url)],
      env: { TEST_KEY: 'sk-test-slowloris-01', HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_MS), HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_MS) },
    });
  });
  after(async () => {
    await proc?.stop();
    await proc?.cleanup();
    await upstream?.close();
  });

  test('a chat body sent a byte at a time is cut off with 408 on the proxy port', async () => {
    const r = await trickle(proc.ready.proxyPort, bodyHead('/v1/chat/completions', 'application/json'), '{"model": "slow", "messages": []');
    assert.ok(r.closedByServer, `still open after ${GIVE_UP_MS} ms (${r.sentBytes} bytes sent)`);
    assert.equal(r.status, '408');
    assert.ok(r.ms >= REQUEST_MS, `cut after ${r.ms.toFixed(0)} ms, before the request timeout`);
  });

  test('the Express side of the proxy (feedback) is bounded the same way', async () => {
    const r = await trickle(proc.ready.proxyPort, bodyHead('/api/feedback', 'application/json'), '{"request_id": "req_');
    assert.ok(r.closedByServer, `still open after ${GIVE_UP_MS} ms`);
    assert.equal(r.status, '408');
  });

  test('headers sent a byte at a time are cut off with 408', async () => {
    const r = await trickle(proc.ready.proxyPort, 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n', 'X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n');
    assert.ok(r.closedByServer, `still open after ${GIVE_UP_MS} ms`);
    assert.equal(r.status, '408');
    assert.ok(r.ms < REQUEST_MS + 1000, `headers took ${r.ms.toFixed(0)} ms to be cut`);
  });

  test('a login form sent a byte at a time is cut off with 408 on the admin port', async () => {
    assert.ok(proc.ready.adminPort, 'the admin page is running');
    const r = await trickle(proc.ready.adminPort, bodyHead('/login', 'application/x-www-form-urlencoded'), 'token=aaaaaaaa');
    assert.ok(r.closedByServer, `still open after ${GIVE_UP_MS} ms`);
    assert.equal(r.status, '408');
  });

  test('answers slower than the request timeout, plain and streamed, are not cut', async () => {
    for (const stream of [false, true]) {
      const res = await fetch(`${proc.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'slow', stream, messages: [{ role: 'user', content: 'take your time' }] }),
      });
      const text = await res.text();
      assert.equal(res.status, 200, text.slice(0, 300));
      if (stream) assert.match(text, /\[DONE\]/);
    }
  });

  test('a keep-alive connection idle for longer than both timeouts still serves its next request', async () => {
    const socket = net.connect(proc.ready.proxyPort, '127.0.0.1');
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => { received += d; });
    await new Promise((r) => socket.once('connect', r));
    const get = 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
    socket.write(get);
    await new Promise((r) => setTimeout(r, REQUEST_MS + 800));
    socket.write(get);
    const deadline = Date.now() + 5000;
    while ((received.match(/HTTP\/1\.1 200/g) ?? []).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    socket.destroy();
    assert.equal((received.match(/HTTP\/1\.1 200/g) ?? []).length, 2, received.slice(0, 200));
  });
});

describe('timeouts are configuration', () => {
  test('defaults: 30 s for headers, 60 s for the whole request', () => {
    const c = loadConfig({}, { cwd: '/nonexistent-switchyard-dir' });
    assert.deepEqual(c.http, { headersTimeoutMs: 30_000, requestTimeoutMs: 60_000 });
  });

  test('a headers timeout longer than the request timeout stops start-up naming both', () => {
    assert.throws(() => loadConfig({ HTTP_HEADERS_TIMEOUT_MS: '5000', HTTP_REQUEST_TIMEOUT_MS: '1000' }, { cwd: '/nonexistent-switchyard-dir' }), (e: unknown) => e instanceof ConfigError && /HTTP_HEADERS_TIMEOUT_MS.*HTTP_REQUEST_TIMEOUT_MS/.test(e.message));
    assert.throws(() => loadConfig({ HTTP_REQUEST_TIMEOUT_MS: '0' }, { cwd: '/nonexistent-switchyard-dir' }), /HTTP_REQUEST_TIMEOUT_MS must be an integer/);
  });
});
