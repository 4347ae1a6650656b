// GET /metrics: Prometheus text with request, latency, first-token, token, cost, attempt, breaker,
// store-queue and learner-run series that follow real traffic, and the scrape rule (loopback or
// the admin token; a client key alone is not enough).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startGateway, model, postJson, fixedRouter, type TestGateway } from '../helpers/gateway.ts';
import { startOpenAIStandIn } from '../standins/openai.ts';
import type { StandIn } from '../standins/common.ts';
import { createApp } from '../../server/app.ts';

const ADMIN = 'metrics-admin-token-7f3a9c';
const CLIENT = 'sk-client-key-for-metrics-01';

/** One sample's value from the text exposition, or undefined when the series is absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[3] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[4]);
  }
  return undefined;
}

function externalAddress(): string | null {
  for (const list of Object.values(os.networkInterfaces())) for (const i of list ?? []) if (i.family === 'IPv4' && !i.internal) return i.address;
  return null;
}

describe('GET /metrics', () => {
  let up: StandIn;
  let gw: TestGateway;
  let open: Server;
  let openPort = 0;
  before(async () => {
    up = await startOpenAIStandIn();
    gw = await startGateway({
      models: [model('alpha', 'openai', up.url, { costPer1kInput: 1, costPer1kOutput: 2 }), model('beta', 'openai', up.url)],
      env: { TEST_KEY: 'sk-upstream-key-metrics-0001', PROXY_API_KEYS: CLIENT, ADMIN_TOKEN: ADMIN, MAX_RETRIES: '0', BREAKER_FAILURES: '2', BREAKER_COOLDOWN_MS: '60000' },
      router: fixedRouter(['alpha', 'beta']),
    });
    // The same app on every interface, to scrape it from a non-loopback address of this machine.
    open = await new Promise((r) => { const s = createServer(createApp(gw.services)).listen(0, '0.0.0.0', () => r(s)); });
    openPort = (open.address() as AddressInfo).port;
  });
  after(async () => {
    open.closeAllConnections();
    await new Promise<void>((r) => open.close(() => r()));
    await gw.close();
    await up.close();
  });

  const auth = { authorization: `Bearer ${CLIENT}` };
  const scrape = async (base = gw.url, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}/metrics`, { headers });
    return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
  };

  test('counts requests, latency, first token, tokens and cost by model, routing method and status', async () => {
    const before = await scrape();
    assert.equal(before.status, 200);
    assert.match(before.type ?? '', /^text\/plain; version=0\.0\.4/);
    const reqLabels = { endpoint: '/api/chat', model: 'alpha', method: 'weights', status: 'ok', code: '200' };
    const base = sample(before.text, 'switchyard_requests_total', reqLabels) ?? 0;

    for (let i = 0; i < 3; i++) assert.equal((await postJson(`${gw.url}/api/chat`, { message: `hello ${i}` }, auth)).status, 200);
    const streamed = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: JSON.stringify({ model: 'auto', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'stream please' }] }) });
    assert.equal(streamed.status, 200);
    await streamed.text();
    await gw.services.store.flush();

    const { text } = await scrape();
    assert.equal(sample(text, 'switchyard_requests_total', reqLabels), base + 3);
    assert.equal(sample(text, 'switchyard_request_duration_seconds_count', { endpoint: '/api/chat', model: 'alpha', method: 'weights', status: 'ok' }), base + 3);
    assert.equal(sample(text, 'switchyard_time_to_first_token_seconds_count', { endpoint: '/v1/chat/completions', model: 'alpha', method: 'weights' }), 1, 'one stream, one first-token observation');
    const input = sample(text, 'switchyard_tokens_total', { endpoint: '/api/chat', model: 'alpha', direction: 'input' })!;
    const output = sample(text, 'switchyard_tokens_total', { endpoint: '/api/chat', model: 'alpha', direction: 'output' })!;
    assert.ok(input > 0 && output > 0, 'tokens counted both ways');
    const cost = sample(text, 'switchyard_cost_usd_total', { endpoint: '/api/chat', model: 'alpha', status: 'ok' })!;
    assert.ok(Math.abs(cost - (input / 1000 + (2 * output) / 1000)) < 1e-9, `cost follows the configured prices (${cost})`);
    assert.ok(sample(text, 'switchyard_upstream_attempts_total', { model: 'alpha', status: 'ok' })! >= 4);
    assert.equal(sample(text, 'switchyard_store_pending_records'), 0);
    assert.equal(sample(text, 'switchyard_breaker_state', { model: 'alpha', state: 'closed' }), 1);
    assert.equal(sample(text, 'switchyard_learned_version'), 0);
    assert.ok(sample(text, 'switchyard_process_cpu_seconds_total') !== undefined, 'process metrics are included');
  });

  test('a failing model shows up as error attempts, a fallback answer and an open breaker', async () => {
    up.behave({ kind: 'error', status: 500 });
    try {
      // alpha and beta share the stand-in: both fail, the client gets a 502 recorded as an error.
      for (let i = 0; i < 2; i++) assert.equal((await postJson(`${gw.url}/api/chat`, { message: `fail ${i}` }, auth)).status, 502);
    } finally {
      up.behave('ok');
    }
    const { text } = await scrape();
    assert.equal(sample(text, 'switchyard_requests_total', { endpoint: '/api/chat', model: '', status: 'error', code: '502' }), 2);
    assert.ok(sample(text, 'switchyard_upstream_attempts_total', { model: 'alpha', status: 'error' })! >= 2);
    assert.equal(sample(text, 'switchyard_breaker_state', { model: 'alpha', state: 'open' }), 1);
    assert.equal(sample(text, 'switchyard_breaker_state', { model: 'alpha', state: 'closed' }), 0);
  });

  test('learner runs are counted from the database', async () => {
    const store = gw.services.store;
    const id = await store.startLearnerRun!();
    await store.finishLearnerRun!(id, { status: 'ok', rowsRead: 4 });
    const failed = await store.startLearnerRun!();
    await store.finishLearnerRun!(failed, { status: 'failed', rowsRead: 0, error: 'boom' });
    const { text } = await scrape();
    assert.equal(sample(text, 'switchyard_learner_runs', { status: 'ok' }), 1);
    assert.equal(sample(text, 'switchyard_learner_runs', { status: 'failed' }), 1);
    assert.ok(sample(text, 'switchyard_learner_last_run_timestamp_seconds')! > Date.now() / 1000 - 60);
  });

  test('from loopback no key is needed; from another address only the admin token opens it', async (t) => {
    assert.equal((await scrape()).status, 200, 'loopback, no key');
    const ip = externalAddress();
    if (!ip) {
      if (process.env.CI) assert.fail('no non-loopback IPv4 address on this machine');
      t.skip('no non-loopback IPv4 address on this machine');
      return;
    }
    const remote = `http://${ip}:${openPort}`;
    const none = await scrape(remote);
    assert.equal(none.status, 401);
    assert.equal(JSON.parse(none.text).error.code, 'metrics_forbidden');
    assert.equal((await scrape(remote, auth)).status, 401, 'a client key does not open the metrics of every caller');
    assert.equal((await scrape(remote, { authorization: 'Bearer wrong-token' })).status, 401);
    const ok = await scrape(remote, { authorization: `Bearer ${ADMIN}` });
    assert.equal(ok.status, 200);
    assert.ok(ok.text.includes('switchyard_requests_total'));
    assert.ok(!ok.text.includes(ADMIN) && !ok.text.includes(CLIENT) && !ok.text.includes('sk-upstream-key'), 'no secret in the exposition');
  });
});
