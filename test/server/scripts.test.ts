// start_proxy_system.sh / stop_proxy_system.sh: background start with pid file and log under the
// data dir, a second start is a no-op, stop is clean (SIGTERM, writes flushed) and idempotent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { freePort } from '../helpers/free-port.ts';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');


test('the start and stop scripts run the service in the background and stop it cleanly', { timeout: 60_000 }, async () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-scripts-'));
  const proxyPort = await freePort();
  const env = { ...process.env, SWITCHYARD_DATA_DIR: dataDir, CLAUDE_PROXY_PORT: String(proxyPort), ADMIN_DASHBOARD_PORT: String(await freePort()), SWITCHYARD_DEMO: '1' };
  const started = await run('bash', [path.join(root, 'start_proxy_system.sh')], { env, cwd: root });
  assert.match(started.stdout, /Switchyard started \(pid \d+\)/);
  const pid = Number(readFileSync(path.join(dataDir, 'switchyard.pid'), 'utf8'));
  try {
    const again = await run('bash', [path.join(root, 'start_proxy_system.sh')], { env, cwd: root });
    assert.match(again.stdout, /already running/);
    const chat = await fetch(`http://127.0.0.1:${proxyPort}/api/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message: 'hello from the script test' }) });
    assert.equal(chat.status, 200);
  } finally {
    const stopped = await run('bash', [path.join(root, 'stop_proxy_system.sh')], { env, cwd: root });
    assert.match(stopped.stdout, /Switchyard stopped/);
  }
  assert.throws(() => process.kill(pid, 0), 'the process is gone');
  assert.equal(existsSync(path.join(dataDir, 'switchyard.pid')), false);
  const log = readFileSync(path.join(dataDir, 'switchyard.log'), 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string });
  assert.ok(log.some((l) => l.msg === 'stopped'), 'clean shutdown logged');
  const idle = await run('bash', [path.join(root, 'stop_proxy_system.sh')], { env, cwd: root });
  assert.match(idle.stdout, /not running/);
});
