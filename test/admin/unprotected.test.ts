// The admin page without ADMIN_TOKEN: loopback only whatever the configured host, a visible
// notice, no login, and still a CSRF token on every POST.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { startAdmin } from '../../server/admin/index.ts';
import { AdminClient, buildTestServices } from './harness.ts';

describe('admin page without ADMIN_TOKEN', () => {
  test('listens on 127.0.0.1 only whatever the configured host, says so, and still needs CSRF', async () => {
    const { services, dataDir } = await buildTestServices({ token: null, env: { SWITCHYARD_HOST: '0.0.0.0' } });
    const admin = await startAdmin(services, { port: 0, host: '0.0.0.0' });
    try {
      assert.match(admin.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const client = new AdminClient(admin.url);
      const page = await client.get('/');
      assert.equal(page.status, 200);
      assert.match(page.text, /Unprotected/);
      assert.match(page.text, /loopback/);
      assert.equal((await client.post('/models/weights', { 'weight:demo-fast': '2' }, { csrf: false })).status, 403);
      assert.equal((await client.post('/models/weights', { 'weight:demo-fast': '2' })).status, 303);
      assert.equal(services.registry.get('demo-fast')!.weight, 2);
    } finally {
      await admin.close();
      await services.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
