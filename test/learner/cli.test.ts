import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { openSqliteStore } from '../../server/store/sqlite.ts';
import { recordHistory } from './synthetic-history.ts';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('npm run learn', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'learn-cli-'));
    const store = await openSqliteStore({ path: path.join(dir, 'switchyard.db') });
    recordHistory({ store, models: ['coder', 'writer'], perDomain: 10, startTs: Date.now() - 86_400_000 });
    await store.close();
  });
  after(async () => { await rm(dir, { recursive: true, force: true }); });

  const learn = (...args: string[]) =>
    run(process.execPath, ['--import', 'tsx', 'learner/cli.ts', '--data-dir', dir, ...args], { cwd: root, env: { ...process.env, SWITCHYARD_CONFIG: '', EMBEDDER: 'builtin' } });

  test('learns from the stored requests and prints progress and a summary', async () => {
    const { stdout } = await learn('--half-life-days', '7');
    assert.match(stdout, /read: 40 \/ 40/);
    assert.match(stdout, /learner run ok: 40 new rows/);
    assert.match(stdout, /version none -> 1/);
    assert.match(stdout, /replay on 40 recent rows:/);
    assert.match(stdout, /priors that moved most:/);
  });

  test('a second run while the lock is held exits with a clear message', async () => {
    const lock = path.join(dir, 'learner.lock');
    await writeFile(lock, JSON.stringify({ pid: process.pid, host: os.hostname(), startedAt: Date.now(), token: 't' }));
    try {
      await assert.rejects(learn(), (e: Error & { code: number; stderr: string }) =>
        e.code === 3 && /another learner run is in progress \(pid \d+ on .*\); lock file .*learner\.lock; not starting a second run/.test(e.stderr));
    } finally {
      await rm(lock, { force: true });
    }
  });

  test('a bad flag is a usage error', async () => {
    await assert.rejects(learn('--half-life-days', 'zero'), (e: Error & { code: number; stderr: string }) => e.code === 2 && /--half-life-days must be a positive number/.test(e.stderr));
  });
});
