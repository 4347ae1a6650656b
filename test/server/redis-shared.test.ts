// Two gateway instances (real servers on ephemeral ports, one SQLite file) sharing a real
// redis-server: one rate limit, breaker decisions, weight changes pushed at once, the "asked
// again" window and the learner lock hold across both; without Redis each keeps serving alone.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startGateway, postJson, model, fixedRouter, type TestGateway } from '../helpers/gateway.ts';
import { redisUnavailable, startRedis, type TestRedis } from '../helpers/redis.ts';
import { startOpenAIStandIn } from '../standins/openai.ts';
import type { StandIn } from '../standins/common.ts';
import { LearnerBusyError } from '../../learner/lock.ts';
import { loadConfig } from '../../server/config.ts';
import { buildServices } from '../../server/services.ts';
import { createLogger } from '../../server/logger.ts';
import { createApp } from '../../server/app.ts';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const skip = redisUnavailable() ?? false;
const ADMIN = 'admin-token-redis-test';
const KEY = 'client-key-redis-test';
/** A key only the rate-limit test spends, so its bucket starts full. */
const LIMITED = 'client-key-limited';
const BURST = 20;

/** Resolve once `check` holds, polling a condition another instance changes; fails after `ms`. */
async function until(what: string, check: () => boolean | Promise<boolean>, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { headers });
  return { status: res.status, body: await res.json() };
}

describe('two instances sharing one Redis', { skip }, () => {
  let redis: TestRedis;
  let upstream: StandIn;
  let dir: string;
  let a: TestGateway;
  let b: TestGateway;

  before(async () => {
    redis = await startRedis();
    upstream = await startOpenAIStandIn();
    dir = await mkdtemp(path.join(os.tmpdir(), 'switchyard-shared-'));
    const env = {
      REDIS_URL: redis.url,
      SWITCHYARD_DB: path.join(dir, 'shared.db'),
      ADMIN_TOKEN: ADMIN,
      PROXY_API_KEYS: `${KEY},${LIMITED}`,
      RATE_LIMIT_RPS: '0.01',
      RATE_LIMIT_BURST: String(BURST),
      BREAKER_FAILURES: '2',
      BREAKER_COOLDOWN_MS: '60000',
      MAX_RETRIES: '0',
      TEST_KEY: 'sk-test-upstream',
    };
    const models = [model('alpha', 'openai', upstream.url), model('beta', 'openai', upstream.url)];
    a = await startGateway({ models, env, router: fixedRouter(['alpha', 'beta']) });
    b = await startGateway({ models, env, router: fixedRouter(['alpha', 'beta']) });
  });

  after(async () => {
    await a?.close();
    await b?.close();
    await upstream?.close();
    await redis?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const auth = { authorization: `Bearer ${KEY}` };

  test('both report Redis in /health', async () => {
    for (const gw of [a, b]) {
      const health = await getJson(`${gw.url}/health`, auth);
      assert.deepEqual(health.body.shared, { backend: 'redis', status: 'ok', error: null });
    }
  });

  test('a weight change through A reaches B at once (pub/sub, well before the 10 s poll)', async () => {
    const res = await postJson(`${a.url}/api/config/weights`, { models: [{ model: 'beta', weight: 7, enabled: false }] }, { authorization: `Bearer ${ADMIN}` });
    assert.equal(res.status, 200);
    await until('B has the new weight', () => b.services.registry.get('beta')!.weight === 7 && b.services.registry.get('beta')!.enabled === false, 2000);
    await postJson(`${a.url}/api/config/weights`, { models: [{ model: 'beta', weight: 1, enabled: true }] }, { authorization: `Bearer ${ADMIN}` });
    await until('B has beta enabled again', () => b.services.registry.get('beta')!.enabled === true, 2000);
  });

  test('a breaker opened on A is seen by B, which then sends alpha nothing', async () => {
    upstream.reset();
    upstream.behave({ kind: 'error', status: 500 });
    for (let i = 0; i < 2; i++) {
      const r = await postJson(`${a.url}/v1/chat/completions`, { model: 'alpha', messages: [{ role: 'user', content: `fail ${i}` }] }, auth);
      assert.equal(r.status, 502);
    }
    assert.equal(a.services.registry.get('alpha')!.breaker.state, 'open');
    await until('B sees alpha open', () => b.services.registry.get('alpha')!.breaker.state === 'open');
    const calls = upstream.requests.length;
    const onB = await postJson(`${b.url}/v1/chat/completions`, { model: 'alpha', messages: [{ role: 'user', content: 'try on B' }] }, auth);
    assert.equal(onB.status, 503);
    assert.equal(upstream.requests.length, calls, 'B did not call the open model');
    const health = await getJson(`${b.url}/health`, auth);
    assert.equal(health.body.models.find((m: { id: string }) => m.id === 'alpha').state, 'open');
    upstream.behave('ok');
  });

  test('the same query asked again on B marks A\'s earlier answer with an implicit rating', async () => {
    const first = await postJson(`${a.url}/v1/chat/completions`, { model: 'beta', messages: [{ role: 'user', content: 'What is a monad?' }] }, auth);
    assert.equal(first.status, 200);
    const second = await postJson(`${b.url}/v1/chat/completions`, { model: 'beta', messages: [{ role: 'user', content: '  what is a   MONAD? ' }] }, auth);
    assert.equal(second.status, 200);
    const firstId = String(first.body.id).replace(/^chatcmpl-/, '');
    const secondId = String(second.body.id).replace(/^chatcmpl-/, '');
    await until('the implicit rating is stored', async () => {
      await b.services.store.flush();
      const stored = await a.services.store.getRequest(firstId);
      return stored?.feedback.some((f) => f.source === 'implicit' && f.rating === 2 && String(f.comment).includes(secondId)) ?? false;
    });
  });

  test('a rating sent through B for an answer from A is accepted', async () => {
    const answer = await postJson(`${a.url}/v1/chat/completions`, { model: 'beta', messages: [{ role: 'user', content: 'rate me through the other one' }] }, auth);
    assert.equal(answer.status, 200);
    const rated = await postJson(`${b.url}/api/feedback`, { request_id: answer.body.id, rating: 5 }, auth);
    assert.equal(rated.status, 201, JSON.stringify(rated.body));
  });

  test('one rate limit holds across both instances', async () => {
    // One burst for the whole deployment, at 0.01/s: spent alternately through A and B (the chat
    // path and an Express route alike), then the next request on either is refused.
    const limited = { authorization: `Bearer ${LIMITED}` };
    let ok = 0;
    let refused: { status: number; headers: Headers } | null = null;
    for (let i = 0; i < BURST * 2 && !refused; i++) {
      const gw = i % 2 ? b : a;
      const res = i % 3 === 0
        ? await postJson(`${gw.url}/v1/chat/completions`, { model: 'beta', messages: [{ role: 'user', content: `n${i}` }] }, limited)
        : await fetch(`${gw.url}/v1/models`, { headers: limited }).then(async (r) => ({ status: r.status, headers: r.headers, body: await r.arrayBuffer() }));
      if (res.status === 200) ok++;
      else refused = res;
    }
    assert.ok(refused, 'a request was refused');
    assert.equal(refused.status, 429);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    assert.equal(ok, BURST, 'exactly one burst was served by the two together');
    for (const gw of [a, b]) assert.equal((await fetch(`${gw.url}/v1/models`, { headers: limited })).status, 429);
  });

  test('the learner lock admits one run at a time across instances, and frees on release', async () => {
    const held = await a.services.shared!.learnerLock.take();
    await assert.rejects(b.services.shared!.learnerLock.take(), (e: unknown) => e instanceof LearnerBusyError && /Redis key switchyard:learner-lock/.test(e.message) && e.holder?.pid === process.pid);
    // `npm run learn` on another data dir (another host, as far as the lock file can tell) is refused too.
    const cli = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const env = { ...process.env, REDIS_URL: redis.url, SWITCHYARD_DB: path.join(dir, 'shared.db'), SWITCHYARD_DATA_DIR: path.join(dir, 'cli-data'), SWITCHYARD_CONFIG: '', EMBEDDER: 'builtin' };
      execFile(process.execPath, ['--import', 'tsx', 'learner/cli.ts'], { cwd: root, env }, (err, _stdout, stderr) => resolve({ code: err ? (err as { code?: number }).code ?? null : 0, stderr }));
    });
    assert.equal(cli.code, 3, cli.stderr);
    assert.match(cli.stderr, /another learner run is in progress .*Redis key switchyard:learner-lock; not starting a second run/);
    await held.release();
    const next = await b.services.shared!.learnerLock.take();
    await assert.rejects(a.services.shared!.learnerLock.take(), LearnerBusyError);
    await next.release();
  });

  test('a Redis that holds connections but stops answering is set aside until it answers again', async () => {
    redis.pause();
    try {
      // The first commands wait out their timeout, then the instance stops asking Redis.
      const res = await postJson(`${a.url}/v1/chat/completions`, { model: 'beta', messages: [{ role: 'user', content: 'anyone home?' }] }, auth);
      assert.equal(res.status, 200);
      await until('A sets Redis aside', () => a.services.shared!.health().status === 'down');
      const health = await getJson(`${a.url}/health`, auth);
      assert.equal(health.body.status, 'degraded');
      assert.equal(health.body.shared.error, 'commands time out');
      assert.equal((await postJson(`${a.url}/v1/chat/completions`, { model: 'beta', messages: [{ role: 'user', content: 'still serving' }] }, auth)).status, 200);
    } finally {
      redis.resume();
    }
    await until('A uses Redis again', () => a.services.shared!.health().status === 'ok', 10_000);
  });

  test('with Redis gone both keep serving on local state and say so; once back, state is shared again', async () => {
    await redis.stop();
    await until('A notices', async () => (await getJson(`${a.url}/health`, auth)).body.shared?.status === 'down');
    // The shared bucket is empty; the instance's own bucket serves meanwhile.
    const res = await postJson(`${a.url}/v1/chat/completions`, { model: 'beta', messages: [{ role: 'user', content: 'still there?' }] }, auth);
    assert.equal(res.status, 200);
    const health = await getJson(`${a.url}/health`, auth);
    assert.equal(health.body.status, 'degraded');
    assert.equal(health.body.shared.status, 'down');
    assert.match(await (await fetch(`${a.url}/metrics`)).text(), /^switchyard_shared_state_up 0$/m);
    await assert.rejects(a.services.shared!.learnerLock.take(), /cannot be reached/);
    await redis.start();
    await until('A is back on Redis', async () => (await getJson(`${a.url}/health`, auth)).body.shared?.status === 'ok', 10_000);
    await until('B is back on Redis', () => b.services.shared!.health().status === 'ok', 10_000);
    assert.match(await (await fetch(`${a.url}/metrics`)).text(), /^switchyard_shared_state_up 1$/m);
  });
});

describe('a learner run announced through Redis', { skip }, () => {
  test('`npm run learn` on another host writes a version once, and both instances load it at once (no polling here)', async () => {
    const redis = await startRedis();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'switchyard-learned-'));
    const env = { REDIS_URL: redis.url, SWITCHYARD_DB: path.join(dir, 'shared.db') };
    const a = await startGateway({ env });
    const b = await startGateway({ env });
    const version = (gw: TestGateway) => (gw.services.router.status?.().learned as { version?: number } | null | undefined)?.version ?? null;
    try {
      for (let i = 0; i < 4; i++) assert.equal((await postJson(`${(i % 2 ? b : a).url}/v1/chat/completions`, { model: 'demo-fast', messages: [{ role: 'user', content: `question ${i}` }] })).status, 200);
      assert.equal(version(a), null);
      const cli = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        // REQUEST_TIMEOUT_MS 1: the rows just stored count as settled.
        const cliEnv = { ...process.env, ...env, SWITCHYARD_DATA_DIR: path.join(dir, 'cli-data'), SWITCHYARD_CONFIG: '', SWITCHYARD_DEMO: '1', EMBEDDER: 'builtin', REQUEST_TIMEOUT_MS: '1' };
        execFile(process.execPath, ['--import', 'tsx', 'learner/cli.ts'], { cwd: root, env: cliEnv }, (err, stdout, stderr) => resolve({ code: err ? (err as { code?: number }).code ?? null : 0, stdout, stderr }));
      });
      assert.equal(cli.code, 0, cli.stderr);
      assert.match(cli.stdout, /version none -> 1/);
      await until('A loaded version 1', () => version(a) === 1);
      await until('B loaded version 1', () => version(b) === 1);
    } finally {
      await a.close();
      await b.close();
      await redis.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('a REDIS_URL that cannot be reached', { skip }, () => {
  test('the gateway starts and serves on local state, /health is degraded, the password is never shown; Redis starting later is picked up', async () => {
    const secret = 'pw-never-shown-42';
    const later = await startRedis({ password: secret });
    await later.stop(); // nothing listens on its port until later.start()
    const lines: string[] = [];
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'switchyard-noredis-'));
    const config = loadConfig({ SWITCHYARD_DATA_DIR: dataDir, SWITCHYARD_DEMO: '1', JUDGE_ENABLED: '0', WRITE_FLUSH_MS: '10', RATE_LIMIT_RPS: '5', REDIS_URL: `${later.url}/0` }, { cwd: dataDir });
    // No secrets handed to this logger: the gateway itself must never print the password.
    const services = await buildServices(config, { logger: createLogger({ level: 'debug', write: (l) => lines.push(l) }), learnedPollMs: 0 });
    const server = createServer(createApp(services)).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const chat = await postJson(`${url}/v1/chat/completions`, { model: 'demo-fast', messages: [{ role: 'user', content: 'hello' }] });
      assert.equal(chat.status, 200);
      const res = await fetch(`${url}/health`);
      const text = await res.text();
      const health = JSON.parse(text);
      assert.equal(health.status, 'degraded');
      assert.equal(health.shared.status, 'down');
      assert.equal(health.shared.error, 'connection refused');
      assert.ok(!text.includes(secret) && !text.includes(`127.0.0.1:${later.port}`), 'neither the password nor the address is shown');
      assert.ok(lines.some((l) => l.includes('redis unavailable')), 'the outage is logged');
      assert.ok(!lines.some((l) => l.includes(secret)), 'no log line holds the password');
      await later.start();
      await until('the gateway connects to the Redis that started late', () => services.shared!.health().status === 'ok', 10_000);
      assert.ok(lines.some((l) => l.includes('redis back')));
    } finally {
      await later.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await services.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('without REDIS_URL', () => {
  test('/health says nothing is shared and /metrics has no shared-state gauge', async () => {
    const gw = await startGateway();
    try {
      const health = await getJson(`${gw.url}/health`);
      assert.deepEqual(health.body.shared, { backend: 'none' });
      assert.equal(health.body.status, 'ok');
      assert.doesNotMatch(await (await fetch(`${gw.url}/metrics`)).text(), /switchyard_shared_state_up/);
    } finally {
      await gw.close();
    }
  });
});

describe('REDIS_URL in the config', () => {
  test('a URL of another scheme is refused without repeating it', () => {
    assert.throws(() => loadConfig({ REDIS_URL: 'http://user:hunter22@example.com' }), (e: Error) => /REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/.test(e.message) && !e.message.includes('hunter22'));
  });
});
