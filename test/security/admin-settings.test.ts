// Global settings on the proxy port (/api/config/weights: weights and enabling models) need an
// admin credential: ADMIN_TOKEN as a bearer, or a key from ADMIN_API_KEYS. Client keys get 403.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, postJson, type TestGateway } from '../helpers/gateway.ts';

const CLIENT = 'sk-client-key-0001';
const ADMIN_KEY = 'sk-admin-key-0001';
const TOKEN = 'admin-token-0001';
const bearer = (k: string) => ({ authorization: `Bearer ${k}` });

describe('admin-only settings on the proxy', () => {
  let gw: TestGateway;
  before(async () => { gw = await startGateway({ env: { PROXY_API_KEYS: CLIENT, ADMIN_API_KEYS: ADMIN_KEY, ADMIN_TOKEN: TOKEN } }); });
  after(async () => { await gw?.close(); });

  test('a client key cannot change weights or disable a model: 403, nothing changes', async () => {
    const before = gw.services.registry.get('demo-fast')!.weight;
    const w = await postJson(`${gw.url}/api/config/weights`, { weights: { 'demo-fast': 0 } }, bearer(CLIENT));
    assert.equal(w.status, 403);
    assert.equal(w.body.error.code, 'admin_required');
    assert.match(w.body.error.message, /ADMIN_TOKEN/);
    const d = await postJson(`${gw.url}/api/config/weights`, { models: [{ model: 'demo-fast', enabled: false }] }, { 'x-api-key': CLIENT });
    assert.equal(d.status, 403);
    assert.equal(gw.services.registry.get('demo-fast')!.weight, before);
    assert.equal(gw.services.registry.get('demo-fast')!.enabled, true);
    assert.deepEqual(await gw.services.store.getWeights(), []);
  });

  test('no key at all is a 401', async () => {
    const r = await postJson(`${gw.url}/api/config/weights`, { weights: { 'demo-fast': 0 } });
    assert.equal(r.status, 401);
  });

  test('ADMIN_TOKEN as a bearer and an ADMIN_API_KEYS key may change them', async () => {
    const a = await postJson(`${gw.url}/api/config/weights`, { weights: { 'demo-fast': 4 } }, bearer(TOKEN));
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.equal(gw.services.registry.get('demo-fast')!.weight, 4);
    const b = await postJson(`${gw.url}/api/config/weights`, { models: [{ model: 'demo-fast', weight: 3, enabled: true }] }, bearer(ADMIN_KEY));
    assert.equal(b.status, 200);
    assert.equal(gw.services.registry.get('demo-fast')!.weight, 3);
  });

  test('an admin body is still validated after the credential', async () => {
    const r = await postJson(`${gw.url}/api/config/weights`, { weights: { 'demo-fast': -1 } }, bearer(TOKEN));
    assert.equal(r.status, 400);
  });

  test('an ADMIN_API_KEYS key is a client key too', async () => {
    const r = await postJson(`${gw.url}/v1/chat/completions`, { model: 'demo-fast', messages: [{ role: 'user', content: 'hi' }] }, bearer(ADMIN_KEY));
    assert.equal(r.status, 200);
    const c = await postJson(`${gw.url}/v1/chat/completions`, { model: 'demo-fast', messages: [{ role: 'user', content: 'hi' }] }, bearer(CLIENT));
    assert.equal(c.status, 200);
  });
});

describe('without any admin credential configured', () => {
  let gw: TestGateway;
  before(async () => { gw = await startGateway(); });
  after(async () => { await gw?.close(); });

  test('nobody changes weights through the proxy: 403 saying what to set', async () => {
    const r = await postJson(`${gw.url}/api/config/weights`, { weights: { 'demo-fast': 0 } });
    assert.equal(r.status, 403);
    assert.match(r.body.error.message, /set ADMIN_TOKEN or ADMIN_API_KEYS/);
    assert.equal(gw.services.registry.get('demo-fast')!.weight, 3);
  });
});
