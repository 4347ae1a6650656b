// The admin session cookie is Secure when the page is reached over HTTPS: a TLS socket, or behind
// a reverse proxy when TRUST_PROXY is set and X-Forwarded-Proto says https. Without TRUST_PROXY
// that header is the client's own word and changes nothing (plain-HTTP loopback use keeps working).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import https from 'node:https';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { ADMIN_TOKEN, AdminClient, buildTestServices, startAdminEnv, type AdminTestEnv } from '../admin/harness.ts';
import { createAdminApp } from '../../server/admin/index.ts';

const sessionCookies = (headers: Headers) => headers.getSetCookie().filter((c) => c.startsWith('sy_admin='));

async function loginFlow(client: AdminClient, headers: Record<string, string>): Promise<string[]> {
  const cookies: string[] = [];
  const page = await client.get('/login', headers);
  cookies.push(...sessionCookies(page.headers));
  const body = new URLSearchParams({ token: ADMIN_TOKEN, next: '/', _csrf: client.csrf });
  const res = await fetch(`${client.base}/login`, { method: 'POST', redirect: 'manual', body, headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: client.cookie, ...headers } });
  assert.equal(res.status, 303);
  cookies.push(...sessionCookies(res.headers));
  return cookies;
}

describe('behind a TLS-terminating proxy, TRUST_PROXY=1', () => {
  let env: AdminTestEnv;
  before(async () => { env = await startAdminEnv({ env: { TRUST_PROXY: '1' } }); });
  after(async () => env?.close());

  test('X-Forwarded-Proto: https makes the pre-login and the logged-in cookie Secure', async () => {
    const cookies = await loginFlow(new AdminClient(env.url), { 'x-forwarded-proto': 'https' });
    assert.equal(cookies.length, 2);
    for (const c of cookies) assert.match(c, /; Secure/, c);
  });

  test('X-Forwarded-Proto: http (or none) leaves it off, so plain HTTP keeps working', async () => {
    for (const headers of [{ 'x-forwarded-proto': 'http' }, {}] as Array<Record<string, string>>) {
      const cookies = await loginFlow(new AdminClient(env.url), headers);
      for (const c of cookies) assert.doesNotMatch(c, /Secure/, c);
    }
  });
});

describe('without TRUST_PROXY', () => {
  let env: AdminTestEnv;
  before(async () => { env = await startAdminEnv(); });
  after(async () => env?.close());

  test('a client claiming X-Forwarded-Proto: https changes nothing', async () => {
    const cookies = await loginFlow(new AdminClient(env.url), { 'x-forwarded-proto': 'https' });
    assert.equal(cookies.length, 2);
    for (const c of cookies) assert.doesNotMatch(c, /Secure/, c);
  });
});

describe('served over TLS directly', () => {
  const haveOpenssl = (() => {
    try {
      execFileSync('openssl', ['version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  test('the session cookie is Secure on an HTTPS socket', { skip: haveOpenssl ? false : 'openssl is not installed: cannot make a test certificate' }, async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'switchyard-tls-'));
    const { services, dataDir } = await buildTestServices();
    let server: https.Server | undefined;
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
      const { app } = createAdminApp(services, { learnerJob: null });
      server = https.createServer({ key: await readFile(path.join(dir, 'key.pem')), cert: await readFile(path.join(dir, 'cert.pem')) }, app);
      await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
      const port = (server.address() as AddressInfo).port;
      const setCookie = await new Promise<string[]>((resolve, reject) => {
        https.get({ host: '127.0.0.1', port, path: '/login', rejectUnauthorized: false }, (res) => {
          res.resume();
          resolve([res.headers['set-cookie'] ?? []].flat());
        }).on('error', reject);
      });
      const session = setCookie.filter((c) => c.startsWith('sy_admin='));
      assert.equal(session.length, 1);
      assert.match(session[0]!, /; Secure/);
    } finally {
      server?.closeAllConnections();
      await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
      await services.close();
      await rm(dir, { recursive: true, force: true });
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
