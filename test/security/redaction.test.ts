// An upstream that echoes the key it was sent, base64-encoded (alone or inside `Basic user:key`)
// or URL-encoded, must not get that copy onto the client's error, /health, the log, the stored
// request or the admin page: redaction knows each configured key's encoded forms.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { startRawUpstream } from '../standins/common.ts';
import { startGateway, model, postJson, type TestGateway } from '../helpers/gateway.ts';
import { createAdminApp } from '../../server/admin/index.ts';
import { createLogger } from '../../server/logger.ts';
import { secretForms } from '../../server/secrets.ts';

/** Not shaped like a provider key (the sk-/AIza patterns would hide it anyway), with characters URL-encoding changes. */
const KEY = 'Upstream+Secret/Key=2026-abcdefXYZ';

/** The copies the hostile upstream sends back, and the part of each that would give the key away. */
function echoes(key: string): Array<{ name: string; sent: string; telltale: string }> {
  const basic = Buffer.from(`svc-user:${key}`).toString('base64');
  return [
    { name: 'base64(key)', sent: Buffer.from(key).toString('base64'), telltale: Buffer.from(key).toString('base64').slice(0, 24) },
    { name: 'base64url(key)', sent: Buffer.from(key).toString('base64url'), telltale: Buffer.from(key).toString('base64url').slice(0, 24) },
    // 'svc-user:' is 9 bytes = 12 characters: everything after that encodes the key alone.
    { name: 'Basic base64(user:key)', sent: `Basic ${basic}`, telltale: basic.slice(12, 36) },
    { name: 'encodeURIComponent(key)', sent: encodeURIComponent(key), telltale: encodeURIComponent(key) },
    { name: 'every byte percent-encoded', sent: [...Buffer.from(key)].map((b) => `%${b.toString(16)}`).join(''), telltale: [...Buffer.from(key)].map((b) => `%${b.toString(16)}`).join('').slice(0, 30) },
  ];
}

function assertNoKey(where: string, text: string): void {
  assert.ok(!text.includes(KEY), `${where} shows the key`);
  for (const e of echoes(KEY)) assert.ok(!text.includes(e.telltale), `${where} shows ${e.name}: ${text.slice(0, 400)}`);
}

describe('an upstream echoing encoded copies of its key', () => {
  let gw: TestGateway;
  let up: { url: string; close(): Promise<void> };
  let admin: Server;
  let adminUrl: string;
  let status = 400;

  before(async () => {
    up = await startRawUpstream((req, res) => {
      req.resume();
      const sent = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      const copies = echoes(sent).map((e) => `${e.name}=${e.sent}`).join(' ');
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { type: 'invalid_request_error', message: `echo-marker: key not valid for this project, got ${copies}` } }));
    });
    gw = await startGateway({ models: [model('leaky', 'openai', up.url)], env: { TEST_KEY: KEY, MAX_RETRIES: '0', BREAKER_FAILURES: '100' } });
    admin = await new Promise((resolve) => {
      const s = createAdminApp(gw.services, { learnerJob: null }).app.listen(0, '127.0.0.1', () => resolve(s));
    });
    adminUrl = `http://127.0.0.1:${(admin.address() as AddressInfo).port}`;
  });
  after(async () => {
    admin?.closeAllConnections();
    await new Promise<void>((r) => (admin ? admin.close(() => r()) : r()));
    await gw?.close();
    await up?.close();
  });

  test('the client\'s error keeps the upstream\'s message but none of the key\'s copies', async () => {
    status = 400;
    const r = await postJson(`${gw.url}/v1/chat/completions`, { model: 'leaky', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 400);
    const text = JSON.stringify(r.body);
    assert.match(text, /echo-marker/, 'the upstream message reaches the client');
    assertNoKey('the error body', text);
  });

  test('/health, the log, the stored request and every admin page show no copy either', async () => {
    status = 500;
    const r = await postJson(`${gw.url}/api/chat`, { model: 'leaky', message: 'hi again' });
    assert.equal(r.status, 502);
    assertNoKey('the 502 body', JSON.stringify(r.body));
    const health = await (await fetch(`${gw.url}/health`)).text();
    assert.match(health, /echo-marker/, '/health shows the last error');
    assertNoKey('/health', health);
    assertNoKey('the log', JSON.stringify(gw.services.logger.recent({ limit: 2000 })));
    await gw.services.store.flush();
    const stored = await gw.services.store.all<{ error: string | null }>('SELECT error FROM queries');
    assert.ok(stored.some((row) => row.error?.includes('echo-marker')), 'the error is stored');
    assertNoKey('the stored errors', JSON.stringify(stored));
    for (const page of ['/', '/models', '/decisions', '/logs', `/decisions/${r.body.error?.request_id ?? ''}`, '/api/overview', '/api/logs']) {
      const res = await fetch(`${adminUrl}${page}`);
      assertNoKey(`admin ${page}`, await res.text());
    }
  });
});

describe('the log and the admin page scrub encoded copies themselves', () => {
  test('a log line with base64, base64url and URL-encoded copies of a configured secret prints none of them', () => {
    const lines: string[] = [];
    const log = createLogger({ secrets: [KEY], write: (l) => lines.push(l) });
    for (const e of echoes(KEY)) log.warn('upstream said', { detail: `prefix ${e.sent} suffix` });
    assert.equal(lines.length, echoes(KEY).length);
    for (const l of lines) {
      assertNoKey('a log line', l);
      assert.match(l, /prefix .*\[REDACTED\].* suffix/);
    }
  });

  test('every alignment of the key inside a longer base64 string is found', () => {
    const forms = secretForms(KEY);
    for (const prefix of ['', 'a', 'ab', 'abc', 'user:', 'Bearer ']) {
      const encoded = Buffer.from(`${prefix}${KEY}!`).toString('base64');
      assert.ok(forms.some((f) => encoded.includes(f)), `prefix ${JSON.stringify(prefix)}`);
    }
    assert.deepEqual(secretForms('abc'), [], 'values too short to scrub are left alone');
  });
});
