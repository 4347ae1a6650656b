// The node:http front door (server/http/front.ts) that serves the chat endpoints without Express:
// Express-style path matching, JSON body reading with the same 4xx answers as the Express body
// parser, request ids, error envelopes per API, client keys, and one rate limiter shared with the
// Express routes. Real HTTP against the real server; special requests go over a raw socket so
// the exact headers (or their absence) are under the test's control.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { gzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { startGateway, postJson, model, type TestGateway } from '../helpers/gateway.ts';
import { startOpenAIStandIn } from '../standins/openai.ts';
import type { StandIn } from '../standins/common.ts';
import { rawPost } from '../helpers/load.ts';

const CHAT = { model: 'demo-fast', messages: [{ role: 'user', content: 'hello front door' }] };
const CLAUDE = { model: 'demo-fast', max_tokens: 16, messages: [{ role: 'user', content: 'hello front door' }] };
const GENERATED_ID = /^req_[0-9a-f]{32}$/;

interface Reply {
  status: number;
  headers: Record<string, string>;
  text: string;
  json: any;
}

/**
 * One HTTP/1.1 exchange over a raw socket: `head` is sent as written (request line and headers,
 * `Connection: close` added), then `body`. Resolves when the server closes the connection.
 */
function rawHttp(url: string, head: string[], body: string | Buffer = '', timeoutMs = 10_000): Promise<Reply> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(u.port), u.hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error(`no complete answer within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(parseReply(Buffer.concat(chunks)));
      } catch (e) {
        reject(e);
      }
    });
    // Not socket.end(): a half-closed client makes node:http abort the request.
    socket.write(Buffer.concat([Buffer.from([...head, 'Host: switchyard.test', 'Connection: close', '', ''].join('\r\n')), typeof body === 'string' ? Buffer.from(body) : body]));
  });
}

/** One request on the given agent; also says which local port (connection) carried it. */
function agentRequest(agent: http.Agent, url: string, method: string, body?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; localPort: number | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), localPort: req.socket?.localPort }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function parseReply(raw: Buffer): Reply {
  const split = raw.indexOf('\r\n\r\n');
  assert.ok(split > 0, `no HTTP response in ${JSON.stringify(raw.toString('latin1').slice(0, 200))}`);
  const [statusLine, ...lines] = raw.subarray(0, split).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let body = raw.subarray(split + 4);
  if (headers['transfer-encoding'] === 'chunked') {
    const parts: Buffer[] = [];
    let at = 0;
    for (;;) {
      const eol = body.indexOf('\r\n', at);
      const size = parseInt(body.subarray(at, eol).toString('latin1'), 16);
      if (!size) break;
      parts.push(body.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  }
  const text = body.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: Number(statusLine!.split(' ')[1]), headers, text, json };
}

/** A chunked request body: each piece as one chunk, then the last chunk. */
function chunked(pieces: string[]): string {
  return pieces.map((p) => `${Buffer.byteLength(p).toString(16)}\r\n${p}\r\n`).join('') + '0\r\n\r\n';
}

function post(path: string, headers: string[]): string[] {
  return [`POST ${path} HTTP/1.1`, ...headers];
}

const json = (body: unknown) => JSON.stringify(body);
const len = (body: string | Buffer) => `Content-Length: ${Buffer.byteLength(body)}`;

function assertOpenAiError(body: any, status: number, expect: { type?: string; code?: string; message?: RegExp }): void {
  assert.equal(typeof body, 'object', `expected a JSON error body for ${status}`);
  assert.equal(body.type, undefined, 'the OpenAI envelope has no top-level type');
  const err = body.error;
  assert.equal(typeof err?.message, 'string');
  assert.equal(typeof err?.type, 'string');
  assert.ok('code' in err && 'param' in err, `OpenAI error shape: ${JSON.stringify(body)}`);
  if (expect.type) assert.equal(err.type, expect.type);
  if (expect.code) assert.equal(err.code, expect.code);
  if (expect.message) assert.match(err.message, expect.message);
}

function assertAnthropicError(body: any, expect: { type?: string; code?: string; message?: RegExp }): void {
  assert.equal(body?.type, 'error', `Anthropic envelope: ${JSON.stringify(body)}`);
  assert.equal(typeof body.error?.message, 'string');
  assert.equal(typeof body.error?.type, 'string');
  if (expect.type) assert.equal(body.error.type, expect.type);
  if (expect.code) assert.equal(body.error.code, expect.code);
  if (expect.message) assert.match(body.error.message, expect.message);
}

function assertGeneratedId(headers: Record<string, string | string[] | undefined> | Headers): void {
  const id = headers instanceof Headers ? headers.get('x-request-id') : headers['x-request-id'];
  assert.match(String(id), GENERATED_ID, 'every front-door response carries a request id');
}

function assertCompletion(r: { status: number; body?: any; json?: any; text?: string }): void {
  const body = r.body ?? r.json;
  assert.equal(r.status, 200, JSON.stringify(body) ?? r.text);
  assert.equal(body.object, 'chat.completion');
  assert.equal(body.choices[0].message.role, 'assistant');
  assert.ok(body.choices[0].message.content.length > 0);
}

describe('front door: paths, bodies, request ids, envelopes', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway();
  });
  after(async () => {
    await gw.close();
  });

  describe('path matching like Express', () => {
    for (const path of ['/v1/chat/completions/', '/V1/Chat/Completions', '/v1/chat/completions?x=1', '/v1/chat/completions/?x=1&y=/z']) {
      test(`POST ${path} is the chat completions endpoint`, async () => {
        const r = await postJson(`${gw.url}${path}`, CHAT);
        assertCompletion(r);
        assertGeneratedId(r.headers);
      });
    }

    test('the Anthropic paths match the same way and answer in the Anthropic shape', async () => {
      for (const path of ['/V1/Messages/', '/api/claude?beta=1']) {
        const r = await postJson(`${gw.url}${path}`, CLAUDE);
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal(r.body.type, 'message');
        assert.equal(r.body.content[0].type, 'text');
      }
    });

    test('a doubled trailing slash is not the chat endpoint (Express does not match it either)', async () => {
      const r = await postJson(`${gw.url}/v1/chat/completions//`, CHAT);
      assert.equal(r.status, 404);
      assertOpenAiError(r.body, 404, { type: 'not_found_error', code: 'route_not_found' });
    });

    test('GET /v1/chat/completions -> 405 with Allow: POST in the OpenAI shape', async () => {
      const res = await fetch(`${gw.url}/v1/chat/completions`);
      const body = await res.json();
      assert.equal(res.status, 405);
      assert.equal(res.headers.get('allow'), 'POST');
      assertOpenAiError(body, 405, { type: 'invalid_request_error', code: 'method_not_allowed', message: /Method GET is not allowed on \/v1\/chat\/completions; use POST/ });
      assertGeneratedId(res.headers);
    });

    test('GET /v1/messages -> 405 in the Anthropic shape', async () => {
      const res = await fetch(`${gw.url}/v1/messages`);
      const body = await res.json();
      assert.equal(res.status, 405);
      assert.equal(res.headers.get('allow'), 'POST');
      assertAnthropicError(body, { message: /Method GET is not allowed/ });
    });

    for (const path of ['/api/chat', '/v1/chat/completions', '/api/claude', '/v1/messages']) {
      test(`OPTIONS ${path} -> 204 with Allow: POST, and the same connection serves a POST next`, async () => {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        try {
          const options = await agentRequest(agent, `${gw.url}${path}`, 'OPTIONS');
          assert.equal(options.status, 204);
          assert.equal(options.headers.allow, 'POST');
          assert.equal(options.body, '');
          assertGeneratedId(options.headers);
          const body = path === '/api/chat' ? { message: 'hello', model: 'demo-fast' } : path === '/v1/chat/completions' ? CHAT : CLAUDE;
          const next = await agentRequest(agent, `${gw.url}${path}`, 'POST', JSON.stringify(body));
          assert.equal(next.status, 200, next.body);
          assert.equal(next.localPort, options.localPort, 'one keep-alive connection for both');
        } finally {
          agent.destroy();
        }
      });
    }

    test('a body sent with a method the path does not take is not read: 405, then the connection closes', async () => {
      const r = await rawHttp(`${gw.url}/v1/chat/completions`, ['PUT /v1/chat/completions HTTP/1.1', 'Content-Type: application/json', 'Content-Length: 2'], '{}');
      assert.equal(r.status, 405);
      assert.equal(r.headers.allow, 'POST');
      assert.equal(r.headers.connection, 'close');
      assertOpenAiError(r.json, 405, { code: 'method_not_allowed', message: /Method PUT/ });
    });

    test('GET /v1/models is still served by Express', async () => {
      const res = await fetch(`${gw.url}/v1/models`);
      const body = await res.json();
      assert.equal(res.status, 200);
      assert.equal(body.object, 'list');
      assert.ok(body.data.some((m: { id: string }) => m.id === 'demo-fast'));
      assertGeneratedId(res.headers);
    });

    test('a streamed completion is served by the front door as SSE with a request id', async () => {
      const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: json({ ...CHAT, stream: true }) });
      const text = await res.text();
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
      assertGeneratedId(res.headers);
      assert.match(text, /"object":"chat\.completion\.chunk"/);
      assert.match(text, /data: \[DONE\]/);
    });
  });

  describe('request bodies', () => {
    test('a gzip-compressed JSON body is inflated', async () => {
      const r = await rawPost(`${gw.url}/v1/chat/completions`, gzipSync(json(CHAT)), { 'content-encoding': 'gzip' });
      assertCompletion(r);
    });

    test('content-encoding: compress is refused with 415', async () => {
      const r = await rawPost(`${gw.url}/v1/chat/completions`, json(CHAT), { 'content-encoding': 'compress' });
      assert.equal(r.status, 415, r.text);
      assertOpenAiError(r.json, 415, { code: 'unsupported_encoding', message: /Unsupported content encoding/ });
      assertGeneratedId(r.headers);
    });

    test('a non-UTF-8 charset is refused with 415', async () => {
      const r = await rawPost(`${gw.url}/v1/chat/completions`, json(CHAT), { 'content-type': 'application/json; charset=latin1' });
      assert.equal(r.status, 415, r.text);
      assertOpenAiError(r.json, 415, { code: 'unsupported_encoding' });
      assertGeneratedId(r.headers);
    });

    test('UTF-16 bodies (little or big endian, with or without a byte order mark) are decoded; UTF-32 gets 415', async () => {
      const text = json({ ...CHAT, messages: [{ role: 'user', content: 'héllo 你好 front door' }] });
      const le = Buffer.from(text, 'utf16le');
      const be = Buffer.from(le).swap16();
      for (const [charset, body] of [['utf-16le', le], ['UTF-16', Buffer.concat([Buffer.from([0xff, 0xfe]), le])], ['utf-16be', be], ['utf-16be', Buffer.concat([Buffer.from([0xfe, 0xff]), be])]] as const) {
        const r = await rawPost(`${gw.url}/v1/chat/completions`, body, { 'content-type': `application/json; charset=${charset}` });
        assertCompletion(r);
        await gw.services.store.flush();
        const stored = await gw.services.store.getRequest(String(r.headers['x-request-id']));
        assert.equal(stored?.queryText, 'héllo 你好 front door', `${charset}: the text arrived intact`);
      }
      const odd = await rawPost(`${gw.url}/v1/chat/completions`, Buffer.concat([le, Buffer.from([0x41])]), { 'content-type': 'application/json; charset=utf-16le' });
      assert.equal(odd.status, 400, 'a torn UTF-16 body is not JSON');
      const r32 = await rawPost(`${gw.url}/v1/chat/completions`, json(CHAT), { 'content-type': 'application/json; charset=utf-32' });
      assert.equal(r32.status, 415);
    });

    test('an explicit UTF-8 charset, in any case, is accepted', async () => {
      const r = await rawPost(`${gw.url}/v1/chat/completions`, json(CHAT), { 'content-type': 'Application/JSON; charset="UTF-8"' });
      assertCompletion(r);
    });

    test('text/plain (no CORS preflight) is refused with 400 invalid_json, even with a JSON body', async () => {
      const r = await rawPost(`${gw.url}/v1/chat/completions`, json(CHAT), { 'content-type': 'text/plain' });
      assert.equal(r.status, 400, r.text);
      assertOpenAiError(r.json, 400, { type: 'invalid_request_error', code: 'invalid_json', message: /JSON object/ });
      assertGeneratedId(r.headers);
    });

    test('application/vnd.api+json is a JSON content type', async () => {
      const r = await rawPost(`${gw.url}/v1/chat/completions`, json(CHAT), { 'content-type': 'application/vnd.api+json' });
      assertCompletion(r);
    });

    test('malformed JSON -> 400 "Request body is not valid JSON"', async () => {
      const r = await rawPost(`${gw.url}/v1/chat/completions`, '{"messages": [');
      assert.equal(r.status, 400, r.text);
      assertOpenAiError(r.json, 400, { code: 'invalid_json' });
      assert.equal((r.json as { error: { message: string } }).error.message, 'Request body is not valid JSON');
    });

    test('a JSON array body -> 400 "must be a JSON object"', async () => {
      const r = await rawPost(`${gw.url}/v1/chat/completions`, json([CHAT]));
      assert.equal(r.status, 400, r.text);
      assertOpenAiError(r.json, 400, { code: 'invalid_json', message: /^Request body must be a JSON object/ });
    });

    test('a JSON scalar body -> 400 invalid_json', async () => {
      const r = await rawPost(`${gw.url}/v1/chat/completions`, '"hello"');
      assert.equal(r.status, 400, r.text);
      assertOpenAiError(r.json, 400, { code: 'invalid_json' });
    });

    test('an empty body with content-length: 0 is an empty object, refused by validation naming messages', async () => {
      const r = await rawHttp(gw.url, post('/v1/chat/completions', ['Content-Type: application/json', 'Content-Length: 0']));
      assert.equal(r.status, 400, r.text);
      assertOpenAiError(r.json, 400, { type: 'invalid_request_error', code: 'invalid_request', message: /messages/ });
      assert.equal(r.json.error.param, 'messages');
      assertGeneratedId(r.headers);
    });

    test('no body and no content-type -> 400 invalid_json with a hint', async () => {
      const r = await rawHttp(gw.url, post('/v1/chat/completions', []));
      assert.equal(r.status, 400, r.text);
      assertOpenAiError(r.json, 400, { code: 'invalid_json', message: /send Content-Type: application\/json/ });
      assertGeneratedId(r.headers);
    });

    test('a JSON content type but no body at all (no length, not chunked) -> 400 invalid_json', async () => {
      const r = await rawHttp(gw.url, post('/v1/chat/completions', ['Content-Type: application/json']));
      assert.equal(r.status, 400, r.text);
      assertOpenAiError(r.json, 400, { code: 'invalid_json' });
    });

    test('a chunked body (no content-length) under the limit is read', async () => {
      const body = json(CHAT);
      const r = await rawHttp(gw.url, post('/v1/chat/completions', ['Content-Type: application/json', 'Transfer-Encoding: chunked']), chunked([body.slice(0, 10), body.slice(10, 30), body.slice(30)]));
      assertCompletion(r);
      assertGeneratedId(r.headers);
    });

    test('a multi-byte UTF-8 character split across chunks is decoded intact', async () => {
      const body = Buffer.from(json({ ...CHAT, messages: [{ role: 'user', content: 'echo 🚦 交通' }] }));
      const cut = body.indexOf(Buffer.from('🚦')) + 2;
      const frame = (b: Buffer) => Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]);
      const r = await rawHttp(gw.url, post('/v1/chat/completions', ['Content-Type: application/json', 'Transfer-Encoding: chunked']), Buffer.concat([frame(body.subarray(0, cut)), frame(body.subarray(cut)), Buffer.from('0\r\n\r\n')]));
      assertCompletion(r);
      assert.match(r.json.choices[0].message.content, /echo 🚦 交通/, 'the demo model quotes the question back');
    });

    test('a corrupt gzip body -> 400 invalid_body', async () => {
      const corrupt = Buffer.concat([gzipSync(json(CHAT)).subarray(0, 10), Buffer.from('definitely not deflate data')]);
      const r = await rawPost(`${gw.url}/v1/chat/completions`, corrupt, { 'content-encoding': 'gzip' });
      assert.equal(r.status, 400, r.text);
      assertOpenAiError(r.json, 400, { code: 'invalid_body', message: /could not be read/ });
      assertGeneratedId(r.headers);
    });

    // When inflating fails part-way (corrupt gzip), the rest of the raw request body must still be
    // read and dropped, or the next request on the same keep-alive connection is never answered.
    test('after a corrupt gzip body the next request on the same connection is answered', async () => {
      const garbage = Buffer.concat([gzipSync('{"a":1}').subarray(0, 10), randomBytes(256 * 1024)]);
      const u = new URL(gw.url);
      const socket = net.connect(Number(u.port), u.hostname);
      let got = '';
      socket.on('data', (c: Buffer) => (got += c.toString('latin1')));
      try {
        socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: ${garbage.length}\r\n\r\n`);
        socket.write(garbage);
        socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
        const deadline = Date.now() + 2000;
        while (Date.now() < deadline && (got.match(/HTTP\/1\.1 \d+/g)?.length ?? 0) < 2) await new Promise((r) => setTimeout(r, 50));
        assert.deepEqual(got.match(/HTTP\/1\.1 \d+/g), ['HTTP/1.1 400', 'HTTP/1.1 200']);
      } finally {
        socket.destroy();
      }
    });
  });

  describe('request ids', () => {
    test('a client x-request-id is echoed as x-client-request-id; the completion id is the gateway\'s', async () => {
      const r = await postJson(`${gw.url}/v1/chat/completions`, CHAT, { 'x-request-id': 'front-door-test-0001' });
      assertCompletion(r);
      assertGeneratedId(r.headers);
      assert.equal(r.headers.get('x-client-request-id'), 'front-door-test-0001');
      assert.equal(r.body.id, `chatcmpl-${r.headers.get('x-request-id')}`);
    });

    test('a client id is echoed on an error answer too', async () => {
      const r = await postJson(`${gw.url}/v1/messages`, '{oops', { 'x-request-id': 'front-door-test-0002' });
      assert.equal(r.status, 400);
      assertGeneratedId(r.headers);
      assert.equal(r.headers.get('x-client-request-id'), 'front-door-test-0002');
    });

    for (const [what, given] of [['with spaces', 'has a space in it'], ['too long', 'x'.repeat(129)]] as const) {
      test(`an unusable client x-request-id (${what}) is not echoed`, async () => {
        const r = await postJson(`${gw.url}/v1/chat/completions`, CHAT, { 'x-request-id': given });
        assertCompletion(r);
        assertGeneratedId(r.headers);
        assert.equal(r.headers.get('x-client-request-id'), null);
      });
    }

    test('every front-door status (200, 400, 413-by-length, 415) carries a fresh id, different each time', async () => {
      const ids = new Set<string>();
      const answers = [
        await rawPost(`${gw.url}/api/chat`, json({ message: 'hi', model: 'demo-fast' })),
        await rawPost(`${gw.url}/api/chat`, 'nope'),
        await rawPost(`${gw.url}/api/chat`, json(CHAT), { 'content-encoding': 'zstd-please' }),
        await rawHttp(gw.url, post('/api/chat', ['Content-Type: application/json', `Content-Length: ${50 * 1024 * 1024}`])),
      ];
      assert.deepEqual(answers.map((a) => a.status), [200, 400, 415, 413]);
      for (const a of answers) {
        assertGeneratedId(a.headers);
        ids.add(String(a.headers['x-request-id']));
      }
      assert.equal(ids.size, answers.length);
    });
  });

  describe('error envelopes', () => {
    for (const path of ['/v1/messages', '/api/claude', '/V1/MESSAGES/']) {
      test(`malformed JSON on ${path} -> 400 in the Anthropic envelope`, async () => {
        const r = await rawPost(`${gw.url}${path}`, '{"messages": [');
        assert.equal(r.status, 400, r.text);
        assertAnthropicError(r.json, { type: 'invalid_request_error', code: 'invalid_json', message: /^Request body is not valid JSON$/ });
        assertGeneratedId(r.headers);
      });
    }

    test('a 415 on /v1/messages is also in the Anthropic envelope', async () => {
      const r = await rawPost(`${gw.url}/v1/messages`, json(CLAUDE), { 'content-type': 'application/json; charset=latin1' });
      assert.equal(r.status, 415, r.text);
      assertAnthropicError(r.json, { code: 'unsupported_encoding' });
    });

    test('malformed JSON on /v1/chat/completions and /api/chat -> 400 in the OpenAI envelope', async () => {
      for (const path of ['/v1/chat/completions', '/api/chat']) {
        const r = await rawPost(`${gw.url}${path}`, '{"messages": [');
        assert.equal(r.status, 400, r.text);
        assertOpenAiError(r.json, 400, { type: 'invalid_request_error', code: 'invalid_json', message: /^Request body is not valid JSON$/ });
      }
    });

    test('a validation error on /v1/messages names the field in the Anthropic envelope', async () => {
      const r = await postJson(`${gw.url}/v1/messages`, { max_tokens: 5 });
      assert.equal(r.status, 400);
      assertAnthropicError(r.body, { type: 'invalid_request_error', message: /messages/ });
    });
  });
});

describe('front door: body limit', () => {
  let gw: TestGateway;
  const LIMIT = 1024;
  before(async () => {
    gw = await startGateway({ env: { BODY_LIMIT_BYTES: String(LIMIT) } });
  });
  after(async () => {
    await gw.close();
  });

  /** A valid chat body of exactly `bytes` bytes. */
  const padded = (bytes: number) => {
    const withText = (text: string) => json({ ...CHAT, messages: [{ role: 'user', content: text }] });
    const body = withText('x'.repeat(bytes - Buffer.byteLength(withText(''))));
    assert.equal(Buffer.byteLength(body), bytes);
    return body;
  };

  test('a body just under the limit is accepted', async () => {
    const body = padded(LIMIT);
    const r = await rawPost(`${gw.url}/v1/chat/completions`, body);
    assertCompletion(r);
  });

  test('a declared content-length over the limit -> 413 body_too_large', async () => {
    const body = padded(LIMIT * 4);
    const r = await rawPost(`${gw.url}/v1/chat/completions`, body);
    assert.equal(r.status, 413, r.text);
    assertOpenAiError(r.json, 413, { type: 'invalid_request_error', code: 'body_too_large', message: new RegExp(`limit of ${LIMIT} bytes`) });
    assertGeneratedId(r.headers);
  });

  test('a chunked body (no content-length) that grows over the limit -> 413 body_too_large', async () => {
    const body = padded(LIMIT * 3);
    const pieces = [body.slice(0, 700), body.slice(700, 1400), body.slice(1400)];
    const r = await rawHttp(gw.url, post('/v1/chat/completions', ['Content-Type: application/json', 'Transfer-Encoding: chunked']), chunked(pieces));
    assert.equal(r.status, 413, r.text);
    assertOpenAiError(r.json, 413, { code: 'body_too_large' });
    assertGeneratedId(r.headers);
  });

  test('the limit applies to the inflated size of a gzip body', async () => {
    const body = padded(LIMIT * 8);
    const compressed = gzipSync(body);
    assert.ok(compressed.length < LIMIT, 'the compressed body itself is under the limit');
    const r = await rawPost(`${gw.url}/v1/chat/completions`, compressed, { 'content-encoding': 'gzip' });
    assert.equal(r.status, 413, r.text);
    assertOpenAiError(r.json, 413, { code: 'body_too_large' });
  });

  test('over the limit on /v1/messages -> 413 in the Anthropic envelope', async () => {
    const r = await rawPost(`${gw.url}/v1/messages`, json({ ...CLAUDE, system: 'x'.repeat(LIMIT * 2) }));
    assert.equal(r.status, 413, r.text);
    assertAnthropicError(r.json, { code: 'body_too_large' });
  });

  test('after a 413 the keep-alive connection still serves the next request', async () => {
    // fetch reuses its keep-alive connection: the oversized body must have been drained.
    const big = await postJson(`${gw.url}/v1/chat/completions`, padded(LIMIT * 4));
    assert.equal(big.status, 413);
    const ok = await postJson(`${gw.url}/v1/chat/completions`, CHAT);
    assertCompletion(ok);
  });
});

describe('front door: client keys (PROXY_API_KEYS)', () => {
  let gw: TestGateway;
  const KEY = 'sk-front-door-test-key';
  before(async () => {
    gw = await startGateway({ env: { PROXY_API_KEYS: `other-key, ${KEY}` } });
  });
  after(async () => {
    await gw.close();
  });

  test('no key -> 401 authentication_error in the OpenAI envelope', async () => {
    const r = await postJson(`${gw.url}/v1/chat/completions`, CHAT);
    assert.equal(r.status, 401);
    assertOpenAiError(r.body, 401, { type: 'authentication_error', code: 'invalid_api_key' });
    assertGeneratedId(r.headers);
  });

  test('a wrong key -> 401, whether as Bearer or x-api-key', async () => {
    const attempts: Record<string, string>[] = [{ authorization: `Bearer ${KEY}x` }, { 'x-api-key': 'nope' }, { authorization: KEY }];
    for (const headers of attempts) {
      const r = await postJson(`${gw.url}/v1/chat/completions`, CHAT, headers);
      assert.equal(r.status, 401, JSON.stringify(headers));
    }
  });

  test('Authorization: Bearer <key> -> 200', async () => {
    assertCompletion(await postJson(`${gw.url}/v1/chat/completions`, CHAT, { authorization: `Bearer ${KEY}` }));
  });

  test('the Bearer scheme is case-insensitive', async () => {
    assertCompletion(await postJson(`${gw.url}/v1/chat/completions`, CHAT, { authorization: `bearer ${KEY}` }));
  });

  test('x-api-key: <key> -> 200, on the OpenAI and the Anthropic paths', async () => {
    assertCompletion(await postJson(`${gw.url}/v1/chat/completions`, CHAT, { 'x-api-key': KEY }));
    const r = await postJson(`${gw.url}/v1/messages`, CLAUDE, { 'x-api-key': KEY });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.type, 'message');
  });

  test('no key on /v1/messages -> 401 in the Anthropic envelope', async () => {
    const r = await postJson(`${gw.url}/v1/messages`, CLAUDE);
    assert.equal(r.status, 401);
    assertAnthropicError(r.body, { type: 'authentication_error' });
  });

  test('the key is checked before the body is read: no key and a malformed body -> 401, not 400', async () => {
    const r = await rawPost(`${gw.url}/v1/chat/completions`, '{not json');
    assert.equal(r.status, 401, r.text);
  });

  test('Express routes check the same keys', async () => {
    assert.equal((await fetch(`${gw.url}/v1/models`)).status, 401);
    assert.equal((await fetch(`${gw.url}/v1/models`, { headers: { authorization: `Bearer ${KEY}` } })).status, 200);
  });
});

describe('front door: one rate limiter shared with the Express routes', () => {
  // 0.01 rps: no token comes back during the test, so the burst is all there is.
  const env = { RATE_LIMIT_RPS: '0.01', RATE_LIMIT_BURST: '3' };

  test('the burst used up on POST /v1/chat/completions makes GET /models (Express) answer 429 with retry-after', async () => {
    const gw = await startGateway({ env });
    try {
      for (let i = 0; i < 3; i++) assertCompletion(await postJson(`${gw.url}/v1/chat/completions`, CHAT));
      const chat = await postJson(`${gw.url}/v1/chat/completions`, CHAT);
      assert.equal(chat.status, 429, 'the front door enforces the burst');
      assertOpenAiError(chat.body, 429, { type: 'rate_limit_error', code: 'rate_limited' });
      assert.match(chat.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
      assertGeneratedId(chat.headers);

      const models = await fetch(`${gw.url}/models`);
      assert.equal(models.status, 429, 'Express shares the bucket the front door used up');
      assert.match(models.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
      assertOpenAiError(await models.json(), 429, { type: 'rate_limit_error', code: 'rate_limited' });

      // The bucket is keyed on the socket address on both sides, not on a client-chosen header.
      const spoofed = await fetch(`${gw.url}/models`, { headers: { 'x-forwarded-for': '203.0.113.7' } });
      assert.equal(spoofed.status, 429, 'X-Forwarded-For does not buy a fresh bucket');
      const spoofedChat = await postJson(`${gw.url}/v1/chat/completions`, CHAT, { 'x-forwarded-for': '203.0.113.8' });
      assert.equal(spoofedChat.status, 429);
      const options = await fetch(`${gw.url}/v1/chat/completions`, { method: 'OPTIONS' });
      assert.equal(options.status, 429, 'OPTIONS spends from the same bucket');
      assertOpenAiError(await options.json(), 429, { type: 'rate_limit_error', code: 'rate_limited' });
    } finally {
      await gw.close();
    }
  });

  test('the burst used up on Express routes makes the chat endpoints answer 429, in each API envelope', async () => {
    const gw = await startGateway({ env });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await fetch(`${gw.url}/v1/models`)).status, 200);
      const chat = await postJson(`${gw.url}/v1/chat/completions`, CHAT);
      assert.equal(chat.status, 429);
      assertOpenAiError(chat.body, 429, { type: 'rate_limit_error' });
      const claude = await postJson(`${gw.url}/v1/messages`, CLAUDE);
      assert.equal(claude.status, 429);
      assertAnthropicError(claude.body, { type: 'rate_limit_error', code: 'rate_limited' });
      assert.match(claude.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    } finally {
      await gw.close();
    }
  });

  test('with client keys, a verified key has its own bucket, shared by both sides; refused keys spend the IP bucket (guessing is rate limited)', async () => {
    const gw = await startGateway({ env: { ...env, PROXY_API_KEYS: 'key-a,key-b' } });
    try {
      const a = { authorization: 'Bearer key-a' };
      for (let i = 0; i < 2; i++) assertCompletion(await postJson(`${gw.url}/v1/chat/completions`, CHAT, a));
      assert.equal((await fetch(`${gw.url}/v1/models`, { headers: a })).status, 200);
      assert.equal((await postJson(`${gw.url}/v1/chat/completions`, CHAT, a)).status, 429, 'key-a used its burst across both sides');
      assert.equal((await fetch(`${gw.url}/v1/models`, { headers: a })).status, 429);
      // Another key (and the IP bucket) are untouched.
      assertCompletion(await postJson(`${gw.url}/v1/chat/completions`, CHAT, { 'x-api-key': 'key-b' }));
      // Wrong keys: 401 while the IP bucket (burst 3) lasts, then 429, on both sides.
      const guesses: number[] = [];
      for (let i = 0; i < 4; i++) guesses.push((await postJson(`${gw.url}/v1/chat/completions`, CHAT, { 'x-api-key': `guess-${i}` })).status);
      assert.deepEqual(guesses, [401, 401, 401, 429]);
      const express = await fetch(`${gw.url}/v1/models`, { headers: { authorization: 'Bearer guess-x' } });
      assert.equal(express.status, 429);
      assert.match(express.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
      // A valid key is not affected by the guesses.
      assertCompletion(await postJson(`${gw.url}/v1/chat/completions`, CHAT, { 'x-api-key': 'key-b' }));
    } finally {
      await gw.close();
    }
  });
});

describe('front door: compressed bodies are bounded and absolute-form targets are routed', () => {
  let gw: Awaited<ReturnType<typeof startGateway>>;
  before(async () => {
    gw = await startGateway({ env: { BODY_LIMIT_BYTES: '1024' } });
  });
  after(async () => {
    await gw?.close();
  });

  test('a gzip bomb is refused at the limit without inflating the rest, and the connection stays usable', async () => {
    const bomb = gzipSync(Buffer.alloc(256 * 1024 * 1024, 0x20), { level: 9 });
    const cpu0 = process.cpuUsage();
    const r = await rawPost(`${gw.url}/v1/chat/completions`, bomb, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    const cpu = process.cpuUsage(cpu0);
    assert.equal(r.status, 413);
    assert.equal((r.json as { error: { code: string } }).error.code, 'body_too_large');
    // Not a speed test: inflating all 256 MB costs the server (this process) most of a second of
    // CPU or more; stopping at the 1 KB limit costs about 25 ms here. The bound sits well between.
    assert.ok((cpu.user + cpu.system) / 1000 < 400, `CPU spent: ${(cpu.user + cpu.system) / 1000} ms`);
    const ok = await postJson(`${gw.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'after the bomb' }] });
    assert.equal(ok.status, 200);
  });

  test('an absolute-form request target (POST http://host/v1/chat/completions) reaches the chat route', async () => {
    const { request } = await import('node:http');
    const { port } = new URL(gw.url);
    const body = JSON.stringify({ messages: [{ role: 'user', content: 'absolute form' }] });
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: `http://127.0.0.1:${port}/v1/chat/completions`, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(body);
    });
    assert.equal(status, 200);
  });
});

describe('front door: an inflater that ends before the request does', () => {
  let gw: Awaited<ReturnType<typeof startGateway>>;
  let slow: StandIn;
  before(async () => {
    slow = await startOpenAIStandIn({ behaviour: { kind: 'ok', delayMs: 600 } });
    gw = await startGateway({ models: [model('slow', 'openai', slow.url)], env: { TEST_KEY: 'sk-test-front-door-key-0001' } });
  });
  after(async () => {
    await gw?.close();
    await slow?.close();
  });

  test('deflate data with bytes after its end, then the client leaves mid-request: the server stays up', async () => {
    const { deflateSync } = await import('node:zlib');
    const u = new URL(gw.url);
    const socket = net.connect(Number(u.port), u.hostname);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const body = Buffer.concat([deflateSync(JSON.stringify({ messages: [{ role: 'user', content: 'trailing bytes' }] })), Buffer.from('x')]);
    // The upstream takes 600 ms: the client leaves while its request is being answered.
    // Chunked, one chunk and no final chunk: the request never ends; then the client goes away.
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n`);
    socket.write(body);
    socket.write('\r\n');
    await new Promise((r) => setTimeout(r, 150));
    socket.destroy();
    await new Promise((r) => setTimeout(r, 150));
    const after = await postJson(`${gw.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'still there?' }] });
    assert.equal(after.status, 200);
  });

  test('a UTF-8 byte order mark before the JSON is accepted', async () => {
    const r = await rawPost(`${gw.url}/v1/chat/completions`, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify({ messages: [{ role: 'user', content: 'bom' }] }))]));
    assert.equal(r.status, 200);
  });
});
