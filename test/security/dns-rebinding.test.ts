// DNS rebinding: the admin page answers only to loopback names, IP literals and
// ADMIN_ALLOWED_HOSTS; a proxy without client keys refuses browser requests (with an Origin) whose
// Host is not allowed. Raw HTTP with forged Host headers, and real Chromium whose resolver maps a
// "rebinding" domain to 127.0.0.1 (what a rebinding DNS answer does).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { startAdminEnv, type AdminTestEnv } from '../admin/harness.ts';
import { startGateway, type TestGateway } from '../helpers/gateway.ts';

const CHROMIUM = '/usr/bin/chromium';

function request(url: string, opts: { method?: string; host?: string; origin?: string; body?: string; headers?: Record<string, string> }): Promise<{ status: number; text: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...(opts.host ? { host: opts.host } : {}), ...(opts.origin ? { origin: opts.origin } : {}), ...opts.headers };
    if (opts.body !== undefined) Object.assign(headers, { 'content-type': headers['content-type'] ?? 'application/json', 'content-length': String(Buffer.byteLength(opts.body)) });
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: opts.method ?? 'GET', agent: false, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('the admin page answers only to allowed Host names', () => {
  let env: AdminTestEnv;
  let port: string;
  before(async () => {
    env = await startAdminEnv({ token: null, env: { ADMIN_ALLOWED_HOSTS: 'admin.internal,ops.example:8443' } });
    port = new URL(env.url).port;
  });
  after(async () => { await env?.close(); });

  test('a rebinding domain in Host gets 403 on every page, static files included', async () => {
    for (const path of ['/', '/decisions', '/rate', '/static/admin.css', '/models']) {
      const r = await request(`${env.url}${path}`, { host: `rebind.attacker.example:${port}` });
      assert.equal(r.status, 403, path);
      assert.match(r.text, /ADMIN_ALLOWED_HOSTS/);
      assert.doesNotMatch(r.text, /<html/i);
    }
  });

  test('loopback names, IP literals and ADMIN_ALLOWED_HOSTS names are served', async () => {
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST`, `[::1]:${port}`, `app.localhost:${port}`, `192.168.1.20:${port}`, `admin.internal:${port}`, 'ops.example']) {
      const r = await request(`${env.url}/`, { host });
      assert.equal(r.status, 200, host);
    }
    assert.equal((await request(`${env.url}/`, { host: 'admin.internal.evil.example' })).status, 403);
  });
});

describe('a proxy without client keys refuses browser requests for other Host names', () => {
  let gw: TestGateway;
  let port: string;
  before(async () => {
    gw = await startGateway();
    port = new URL(gw.url).port;
  });
  after(async () => { await gw?.close(); });

  test('with an Origin and a foreign Host: 403 on chat and on the other paths, in the path\'s envelope', async () => {
    const host = `rebind.attacker.example:${port}`;
    const origin = `http://${host}`;
    const chat = await request(`${gw.url}/v1/chat/completions`, { method: 'POST', host, origin, body: JSON.stringify({ model: 'demo-fast', messages: [{ role: 'user', content: 'hi' }] }) });
    assert.equal(chat.status, 403);
    assert.equal(JSON.parse(chat.text).error.code, 'host_not_allowed');
    const claude = await request(`${gw.url}/v1/messages`, { method: 'POST', host, origin, body: '{}' });
    assert.equal(claude.status, 403);
    assert.equal(JSON.parse(claude.text).type, 'error');
    for (const path of ['/health', '/api/routing/analyze']) {
      const r = await request(`${gw.url}${path}`, { host, origin });
      assert.equal(r.status, 403, path);
    }
  });

  test('without an Origin (not a browser), or with an allowed Host, requests are served', async () => {
    assert.equal((await request(`${gw.url}/health`, { host: `rebind.attacker.example:${port}` })).status, 200);
    assert.equal((await request(`${gw.url}/health`, { host: `localhost:${port}`, origin: 'http://localhost:5173' })).status, 200);
  });
});

describe('in real Chromium, a rebinding domain reads nothing', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing` }, () => {
  let admin: AdminTestEnv;
  let gw: TestGateway;
  let browser: Browser;
  before(async () => {
    admin = await startAdminEnv({ token: null });
    gw = await startGateway();
    await fetch(`${gw.url}/api/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message: 'a secret stored prompt' }) });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // The attacker's DNS answers 127.0.0.1 for its own domain.
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--host-resolver-rules=MAP rebind.attacker.test 127.0.0.1'],
    });
  });
  after(async () => {
    await browser?.close();
    await admin?.close();
    await gw?.close();
  });

  test('the token-less admin page at rebind.attacker.test is refused', async () => {
    const page = await browser.newPage();
    const res = await page.goto(`http://rebind.attacker.test:${new URL(admin.url).port}/decisions`);
    assert.equal(res?.status(), 403);
    assert.doesNotMatch(await page.content(), /secret stored prompt|demo-fast/);
    // The attack the issue ran: read the CSRF token from the (same-origin) models page, disable a model.
    const outcome = await page.evaluate(async () => {
      const html = await (await fetch('/models')).text();
      const csrf = /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
      const r = await fetch('/models/toggle', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `_csrf=${encodeURIComponent(csrf)}&model=demo-fast&enabled=0` });
      return { csrf, status: r.status };
    });
    assert.equal(outcome.csrf, '', 'the models page was not readable');
    assert.equal(admin.services.registry.get('demo-fast')!.enabled, true, 'the model is still enabled');
    await page.close();
  });

  test('a script on rebind.attacker.test cannot use the key-less proxy', async () => {
    const page = await browser.newPage();
    // The attacker's page, now answered by the proxy (a 404 for a path it does not serve).
    await page.goto(`http://rebind.attacker.test:${new URL(gw.url).port}/attacker-page`);
    const result = await page.evaluate(async () => {
      const r = await fetch('/api/chat', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message: 'spend their tokens' }) });
      return { status: r.status, text: await r.text() };
    });
    assert.equal(result.status, 403, result.text);
    await page.close();
  });
});
