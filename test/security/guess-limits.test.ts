// Guessing credentials is limited by default (RATE_LIMIT_RPS 0, no AUTH_FAILURE_* set): after
// AUTH_FAILURE_LIMIT (10) wrong proxy keys, wrong ADMIN_TOKEN bearers or wrong admin logins from one
// address within AUTH_FAILURE_WINDOW_MS, that address gets 429 with Retry-After for every
// credential it sends, the right one included; other addresses are unaffected. TRUST_PROXY makes
// the proxy's X-Forwarded-For address count; without it that header cannot buy fresh tries.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http, { createServer, type Server } from 'node:http';
import os from 'node:os';
import type { AddressInfo } from 'node:net';
import { createApp } from '../../server/app.ts';
import { startGateway, postJson, type TestGateway } from '../helpers/gateway.ts';
import { ADMIN_TOKEN, AdminClient, startAdminEnv, type AdminTestEnv } from '../admin/harness.ts';

const KEY = 'sk-right-key-guess-0001';
const TOKEN = 'admin-token-guess-0001';
const CHAT = { model: 'demo-fast', messages: [{ role: 'user', content: 'hi' }] };
const LIMIT = 10;

/** A request from a chosen loopback source address (127.0.0.2 is another client on this machine). */
function requestFrom(localAddress: string, url: string, opts: { method?: string; headers?: Record<string, string>; body?: unknown } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  const u = new URL(url);
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: u.hostname, port: u.port, path: u.pathname, method: opts.method ?? (payload ? 'POST' : 'GET'), localAddress, agent: false,
      headers: { ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}), ...opts.headers },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

describe('wrong proxy keys, with no rate limit configured', () => {
  let gw: TestGateway;
  before(async () => { gw = await startGateway({ env: { PROXY_API_KEYS: KEY } }); });
  after(async () => { await gw?.close(); });

  test('ten wrong keys are 401s; then the address gets 429 with Retry-After on both doors, even for the right key', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT; i++) {
      // Both doors count into the same tally: chat paths (node:http) and the rest (Express).
      const r = i % 2 === 0
        ? await postJson(`${gw.url}/v1/chat/completions`, CHAT, { authorization: `Bearer sk-guess-${i}` })
        : { status: (await fetch(`${gw.url}/v1/models`, { headers: { 'x-api-key': `sk-guess-${i}` } })).status };
      statuses.push(r.status);
    }
    assert.deepEqual(statuses, Array(LIMIT).fill(401));
    const blocked = await postJson(`${gw.url}/v1/chat/completions`, CHAT, { authorization: 'Bearer sk-guess-next' });
    assert.equal(blocked.status, 429);
    assert.equal(blocked.body.error.code, 'too_many_auth_failures');
    assert.match(blocked.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    assert.ok(Number(blocked.headers.get('retry-after')) <= 300);
    const anthropic = await postJson(`${gw.url}/v1/messages`, { ...CHAT, max_tokens: 10 }, { 'x-api-key': 'sk-guess-anthropic' });
    assert.equal(anthropic.status, 429);
    assert.equal(anthropic.body.type, 'error', 'in the Anthropic envelope');
    assert.equal((await fetch(`${gw.url}/v1/models`, { headers: { authorization: 'Bearer sk-guess-x' } })).status, 429);
    // The right key from the guessing address learns nothing either.
    assert.equal((await postJson(`${gw.url}/v1/chat/completions`, CHAT, { authorization: `Bearer ${KEY}` })).status, 429);
  });

  test('another address is unaffected: its right key works and its wrong key is a 401', async () => {
    const ok = await requestFrom('127.0.0.2', `${gw.url}/v1/chat/completions`, { body: CHAT, headers: { authorization: `Bearer ${KEY}` } });
    assert.equal(ok.status, 200, ok.text.slice(0, 200));
    const wrong = await requestFrom('127.0.0.2', `${gw.url}/v1/chat/completions`, { body: CHAT, headers: { authorization: 'Bearer sk-guess-other' } });
    assert.equal(wrong.status, 401);
  });

  test('X-Forwarded-For is ignored without TRUST_PROXY: a guesser cannot buy fresh tries with it', async () => {
    const r = await requestFrom('127.0.0.3', `${gw.url}/v1/models`, { headers: { authorization: 'Bearer sk-guess-0' } });
    assert.equal(r.status, 401);
    for (let i = 1; i < LIMIT; i++) await requestFrom('127.0.0.3', `${gw.url}/v1/models`, { headers: { authorization: `Bearer sk-guess-${i}`, 'x-forwarded-for': `10.0.0.${i}` } });
    const after = await requestFrom('127.0.0.3', `${gw.url}/v1/models`, { headers: { authorization: 'Bearer sk-guess-last', 'x-forwarded-for': '10.9.9.9' } });
    assert.equal(after.status, 429);
  });
});

describe('behind a trusted reverse proxy (TRUST_PROXY=1)', () => {
  let gw: TestGateway;
  before(async () => { gw = await startGateway({ env: { PROXY_API_KEYS: KEY, TRUST_PROXY: '1', AUTH_FAILURE_LIMIT: '3' } }); });
  after(async () => { await gw?.close(); });

  test('each forwarded client address has its own count (the last X-Forwarded-For entry)', async () => {
    const from = (xff: string, key: string) => postJson(`${gw.url}/v1/chat/completions`, CHAT, { authorization: `Bearer ${key}`, 'x-forwarded-for': xff });
    for (let i = 0; i < 3; i++) assert.equal((await from(`1.1.1.1, 203.0.113.${i}, 198.51.100.7`, 'sk-guess')).status, 401);
    assert.equal((await from('198.51.100.7', 'sk-guess')).status, 429, 'the client the proxy saw is blocked, whatever it claims before it');
    assert.equal((await from('198.51.100.8', KEY)).status, 200, 'another client behind the same proxy is not');
  });
});

describe('guessing ADMIN_TOKEN through the key-less proxy', () => {
  let gw: TestGateway;
  before(async () => { gw = await startGateway({ env: { ADMIN_TOKEN: TOKEN } }); });
  after(async () => { await gw?.close(); });

  test('ten wrong bearers on /api/config/weights are 403s, then 429 even for the right token; chat without a key still works', async () => {
    const body = { weights: { 'demo-fast': 2 } };
    for (let i = 0; i < LIMIT; i++) assert.equal((await postJson(`${gw.url}/api/config/weights`, body, { authorization: `Bearer guess-${i}` })).status, 403);
    const blocked = await postJson(`${gw.url}/api/config/weights`, body, { authorization: `Bearer ${TOKEN}` });
    assert.equal(blocked.status, 429);
    assert.match(blocked.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    assert.equal(gw.services.registry.get('demo-fast')!.weight, 3, 'nothing changed');
    assert.equal((await postJson(`${gw.url}/v1/chat/completions`, CHAT)).status, 200);
    const other = await requestFrom('127.0.0.2', `${gw.url}/api/config/weights`, { body, headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(other.status, 200, other.text.slice(0, 200));
  });
});

describe('guessing ADMIN_TOKEN on /metrics from another host', () => {
  let gw: TestGateway;
  let open: Server;
  let remote: string | null = null;
  before(async () => {
    gw = await startGateway({ env: { ADMIN_TOKEN: TOKEN } });
    // The same app on every interface, scraped through this machine's own non-loopback address.
    open = await new Promise((r) => { const s = createServer(createApp(gw.services)).listen(0, '0.0.0.0', () => r(s)); });
    const ip = Object.values(os.networkInterfaces()).flat().find((i) => i?.family === 'IPv4' && !i.internal)?.address;
    if (ip) remote = `http://${ip}:${(open.address() as AddressInfo).port}`;
  });
  after(async () => {
    open?.closeAllConnections();
    await new Promise<void>((r) => (open ? open.close(() => r()) : r()));
    await gw?.close();
  });

  test('ten wrong tokens are 401s, then 429 even for the right token', async (t) => {
    if (!remote) return t.skip('no non-loopback IPv4 address on this machine');
    const scrape = async (token: string) => (await fetch(`${remote}/metrics`, { headers: { authorization: `Bearer ${token}` } })).status;
    for (let i = 0; i < LIMIT; i++) assert.equal(await scrape(`guess-${i}`), 401);
    assert.equal(await scrape(TOKEN), 429);
    assert.equal((await fetch(`${gw.url}/metrics`)).status, 200, 'loopback scrapes need no token and are not affected');
  });
});

describe('admin page logins', () => {
  let env: AdminTestEnv;
  before(async () => { env = await startAdminEnv(); });
  after(async () => env?.close());

  test('ten wrong tokens are 401s, then 429 with Retry-After, and the right token is refused too until the window passes', async () => {
    const client = new AdminClient(env.url);
    await client.get('/login');
    for (let i = 0; i < LIMIT; i++) assert.equal((await client.post('/login', { token: `wrong-${i}`, next: '/' })).status, 401);
    const blocked = await client.post('/login', { token: ADMIN_TOKEN, next: '/' });
    assert.equal(blocked.status, 429);
    assert.match(blocked.text, /Too many failed attempts/);
    assert.match(blocked.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    assert.equal((await client.get('/')).status, 303, 'not logged in');
  });
});
