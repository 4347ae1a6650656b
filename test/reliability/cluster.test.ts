// SWITCHYARD_WORKERS=2 on the real entry: two proxy processes share the port, worker 1 serves the
// admin page, a worker that dies is replaced, and SIGTERM to the primary stops both with every
// acknowledged request stored in the one SQLite file.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startOpenAIStandIn } from '../standins/openai.ts';
import type { StandIn } from '../standins/common.ts';
import { model } from '../helpers/gateway.ts';
import { requestId, runConcurrent, sleep, spawnSwitchyard, type SwitchyardProcess } from '../helpers/load.ts';
import { openSqliteStore } from '../../server/store/sqlite.ts';
import { Client } from 'undici';
import { fork } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Which worker answered, on a fresh connection each time (the primary deals connections out in turn). */
async function healthOf(url: string): Promise<{ pid: number; worker: number }> {
  const res = await fetch(`${url}/health`, { headers: { connection: 'close' } });
  assert.equal(res.status, 200);
  return ((await res.json()) as { process: { pid: number; worker: number } }).process;
}

async function workersSeen(url: string, tries = 12): Promise<Map<number, number>> {
  const seen = new Map<number, number>();
  for (let i = 0; i < tries; i++) {
    const p = await healthOf(url);
    seen.set(p.worker, p.pid);
  }
  return seen;
}

/** `n` chat requests to model `fast`, each on a fresh connection (so both workers get some); the ids of the answered ones. */
function acknowledged(url: string, prefix: string, n: number, concurrency: number): Promise<string[]> {
  return runConcurrent(n, concurrency, async () => {
    const id = requestId(prefix);
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': id, connection: 'close' },
      body: JSON.stringify({ model: 'fast', messages: [{ role: 'user', content: `${prefix} ${id}` }] }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { _actual_model_used: string };
    assert.equal(body._actual_model_used, 'fast');
    return id;
  });
}

describe('SWITCHYARD_WORKERS=2 (node:cluster)', () => {
  let upstream: StandIn;
  let proc: SwitchyardProcess;

  before(async () => {
    upstream = await startOpenAIStandIn({ behaviour: { kind: 'ok', delayMs: 5 } });
    proc = await spawnSwitchyard({
      models: [model('fast', 'openai', upstream.url)],
      env: { TEST_KEY: 'sk-test-cluster-key-0001', SWITCHYARD_WORKERS: '2', WRITE_FLUSH_MS: '20', SHUTDOWN_GRACE_MS: '5000', ADMIN_TOKEN: 'admin-token-cluster-01' },
    });
  });
  after(async () => {
    await proc?.stop(2000);
    await proc?.cleanup();
    await upstream?.close();
  });

  test('both workers answer on the one port, each its own process; worker 1 serves the admin page', async () => {
    const seen = await workersSeen(proc.url);
    assert.deepEqual([...seen.keys()].sort(), [1, 2]);
    assert.notEqual(seen.get(1), seen.get(2));
    assert.ok(![...seen.values()].includes(proc.pid), 'the primary serves no requests itself');
    const admin = await fetch(`http://127.0.0.1:${proc.ready.adminPort}/login`);
    assert.equal(admin.status, 200);
  });

  test('a worker that dies is replaced by a new process with the same worker number', async () => {
    const before = await workersSeen(proc.url);
    process.kill(before.get(2)!, 'SIGKILL');
    const deadline = Date.now() + 15_000;
    let replaced: number | undefined;
    while (Date.now() < deadline && replaced === undefined) {
      await sleep(200);
      try {
        const now = await workersSeen(proc.url, 4);
        const pid = now.get(2);
        if (pid !== undefined && pid !== before.get(2)) replaced = pid;
      } catch {
        // a connection handed to the dying worker: try again
      }
    }
    assert.ok(replaced, 'worker 2 came back as a new process');
    assert.equal((await workersSeen(proc.url)).get(1), before.get(1), 'worker 1 was left alone');
  });

  test('a weight set through one worker reaches the other from the database', async () => {
    // One connection per client, so each client talks to one worker; open them until both workers are held.
    const clients = new Map<number, Client>();
    for (let i = 0; i < 10 && clients.size < 2; i++) {
      const c = new Client(proc.url, { pipelining: 1 });
      const res = await c.request({ method: 'GET', path: '/health' });
      const { worker } = ((await res.body.json()) as { process: { worker: number } }).process;
      if (clients.has(worker)) await c.close();
      else clients.set(worker, c);
    }
    try {
      assert.deepEqual([...clients.keys()].sort(), [1, 2]);
      const weightOn = async (c: Client) => {
        const res = await c.request({ method: 'GET', path: '/models' });
        return ((await res.body.json()) as { models: { id: string; weight: number }[] }).models.find((m) => m.id === 'fast')!.weight;
      };
      const set = await clients.get(1)!.request({ method: 'POST', path: '/api/config/weights', headers: { 'content-type': 'application/json', authorization: 'Bearer admin-token-cluster-01' }, body: JSON.stringify({ weights: { fast: 0.25 } }) });
      assert.equal(set.statusCode, 200);
      await set.body.text();
      assert.equal(await weightOn(clients.get(1)!), 0.25, 'the worker that took the call has it at once');
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline && (await weightOn(clients.get(2)!)) !== 0.25) await sleep(250);
      assert.equal(await weightOn(clients.get(2)!), 0.25, 'the other worker picked it up from the database');
    } finally {
      for (const c of clients.values()) await c.close();
    }
  });

  test('GET /metrics on either worker counts the requests of both', async () => {
    const count = async () => {
      const res = await fetch(`${proc.url}/metrics`, { headers: { connection: 'close' } });
      assert.equal(res.status, 200);
      const line = (await res.text()).split('\n').find((l) => l.startsWith('switchyard_requests_total{') && l.includes('model="fast"') && l.includes('code="200"'));
      return line ? Number(line.split(' ').pop()) : 0;
    };
    const base = await count();
    await acknowledged(proc.url, 'metrics', 20, 4);
    // Fresh connections land on both workers in turn: each answer must be the cluster-wide sum.
    for (let i = 0; i < 4; i++) assert.equal(await count(), base + 20);
  });

  test('SIGTERM to the primary stops both workers (exit 0) and every acknowledged request is in the database', async () => {
    const ids = await acknowledged(proc.url, 'cluster', 200, 16);
    const code = await proc.stop(20_000);
    assert.equal(code, 0, `exit code (stderr: ${proc.stderr().slice(0, 500)})`);
    const store = await openSqliteStore({ path: proc.dbPath });
    try {
      const rows = await store.all<{ id: string }>(`select correlation_id as id from queries where correlation_id like 'cluster%'`);
      const stored = new Set(rows.map((r) => r.id));
      assert.deepEqual(ids.filter((id) => !stored.has(id)), [], 'acknowledged requests missing from the database');
    } finally {
      await store.close();
    }
  });
});

/**
 * Worker processes of `pid`, from /proc: children running server/main.ts (a cold tsx cache makes
 * the primary start an esbuild service child too, long before it forks a worker).
 */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== pid) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('main.ts')) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

describe('SWITCHYARD_WORKERS=2: stops that do not go by the plan', () => {
  test('a primary killed outright: the workers finish, flush every acknowledged request and exit', async () => {
    const upstream = await startOpenAIStandIn();
    // Writes wait 10 s for their batch, so they are still queued when the primary dies.
    const proc = await spawnSwitchyard({
      models: [model('fast', 'openai', upstream.url)],
      env: { TEST_KEY: 'sk-test-cluster-key-0003', SWITCHYARD_WORKERS: '2', WRITE_FLUSH_MS: '10000', SHUTDOWN_GRACE_MS: '3000' },
    });
    try {
      const ids = await acknowledged(proc.url, 'orphan', 40, 8);
      const workers = childrenOf(proc.pid);
      assert.equal(workers.length, 2);
      process.kill(proc.pid, 'SIGKILL');
      const alive = (pid: number) => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      const deadline = Date.now() + 15_000;
      while (workers.some(alive) && Date.now() < deadline) await sleep(50);
      assert.deepEqual(workers.filter(alive), [], 'the workers exited on their own');
      const store = await openSqliteStore({ path: proc.dbPath });
      try {
        const stored = new Set((await store.all<{ id: string }>(`select correlation_id as id from queries where correlation_id like 'orphan%'`)).map((r) => r.id));
        assert.deepEqual(ids.filter((id) => !stored.has(id)), [], 'acknowledged requests missing from the database');
      } finally {
        await store.close();
      }
    } finally {
      await proc.cleanup();
      await upstream.close();
    }
  });


  test('SIGTERM while the first worker is still starting is a clean stop: exit 0, no worker left behind', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'switchyard-cluster-start-'));
    try {
      const config = path.join(dir, 'switchyard.config.json');
      await writeFile(config, JSON.stringify({ models: [model('fast', 'openai', 'http://127.0.0.1:9')] }));
      const primary = fork(fileURLToPath(new URL('../../server/main.ts', import.meta.url)), [], {
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        env: {
          PATH: process.env.PATH, HOME: process.env.HOME, SWITCHYARD_WORKERS: '2', SWITCHYARD_LOG_LEVEL: 'warn', JUDGE_ENABLED: '0',
          TEST_KEY: 'sk-test-cluster-key-0002', CLAUDE_PROXY_PORT: '0', ADMIN_DASHBOARD_PORT: '0', SWITCHYARD_HOST: '127.0.0.1',
          SWITCHYARD_DATA_DIR: dir, SWITCHYARD_CONFIG: config,
        },
      });
      let stderr = '';
      primary.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | string>((resolve) => primary.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
      // The primary installs its signal handlers before it forks worker 1.
      let workers: number[] = [];
      const deadline = Date.now() + 20_000;
      while (workers.length === 0 && Date.now() < deadline) {
        await sleep(10);
        workers = childrenOf(primary.pid!);
      }
      assert.ok(workers.length > 0, 'the primary forked a worker');
      primary.kill('SIGTERM');
      const code = await Promise.race([exited, sleep(20_000).then(() => 'timeout')]);
      assert.equal(code, 0, `exit code (stderr: ${stderr.slice(0, 500)})`);
      await sleep(100);
      for (const w of workers) assert.throws(() => process.kill(w, 0), `worker ${w} is gone`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
