// A provider's circuit breaker under concurrent load: it opens after repeated failures, keeps
// traffic off the failing model while every client still gets the fallback, then closes again.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { StandIn } from '../standins/common.ts';
import { model, type TestGateway, alphaBeta } from '../helpers/gateway.ts';
import { runConcurrent, sleep, timedPost } from '../helpers/load.ts';

const CONCURRENCY = 10;
const FAILURES_TO_OPEN = 3;

describe('circuit breaker under load', () => {
  let a: StandIn;
  let b: StandIn;
  let gw: TestGateway;
  alphaBeta({ TEST_KEY: 'sk-test-reliability-key-0002', BREAKER_FAILURES: String(FAILURES_TO_OPEN), BREAKER_COOLDOWN_MS: '300', MAX_RETRIES: '0', UPSTREAM_TIMEOUT_MS: '1000', REQUEST_TIMEOUT_MS: '3000' }, (t) => ({ a, b, gw } = t));

  test('a failing model trips its breaker under concurrent load, is skipped, then closes again after a good probe', async () => {
    const send = (message: string) => timedPost(`${gw.url}/api/chat`, { message }, 4000);
    a.behave({ kind: 'error', status: 500 });
    const results = await runConcurrent(60, CONCURRENCY, () => send('load while alpha is down'));
    assert.deepEqual(new Set(results.map((r) => `${r.status} ${r.json._actual_model_used}`)), new Set(['200 beta']), 'every request got the fallback answer');
    const alpha = gw.services.registry.get('alpha')!;
    // Open, or already half-open when the load outlasted the 300 ms cool-down on a slow machine.
    assert.notEqual(alpha.breaker.state, 'closed');
    assert.ok(alpha.breaker.consecutiveFailures >= FAILURES_TO_OPEN);
    // At most the failures that opened it plus the calls already in flight reached alpha.
    assert.ok(a.requests.length <= FAILURES_TO_OPEN + CONCURRENCY, `the open breaker kept traffic off alpha (${a.requests.length} calls for 60 requests)`);

    await gw.services.store.flush();
    const [queries] = await gw.services.store.all<{ n: number }>('select count(*) as n from queries');
    assert.equal(queries!.n, 60, 'every request is stored');
    const [skips] = await gw.services.store.all<{ n: number }>("select count(*) as n from model_calls where model = 'alpha' and status = 'skipped' and error = 'circuit open'");
    assert.equal(skips!.n + a.requests.length, 60, 'each request either called alpha or stored a circuit-open skip');

    a.behave('ok');
    const deadline = Date.now() + 3000;
    while (alpha.breaker.state === 'open' && Date.now() < deadline) await sleep(20);
    assert.equal(alpha.breaker.state, 'half-open');
    const probe = await send('are you back?');
    assert.equal(probe.json._actual_model_used, 'alpha');
    assert.equal(alpha.breaker.state, 'closed');
    const health = (await (await fetch(`${gw.url}/health`)).json()) as { models: { id: string; state: string }[] };
    assert.equal(health.models.find((m) => m.id === 'alpha')?.state, 'closed');
    const after = await runConcurrent(20, CONCURRENCY, () => send('alpha is back'));
    assert.ok(after.every((r) => r.json._actual_model_used === 'alpha'), 'traffic returns to alpha');
  });

  test(
    'a half-open model whose probe never started (client gone, or no time left) gets probed by the next request',
    async () => {
      const alpha = gw.services.registry.get('alpha')!;
      a.behave({ kind: 'error', status: 500 });
      await runConcurrent(FAILURES_TO_OPEN, 1, () => timedPost(`${gw.url}/api/chat`, { message: 'trip alpha' }, 4000));
      assert.equal(alpha.breaker.state, 'open');
      a.behave('ok');
      const deadline = Date.now() + 3000;
      while (alpha.breaker.state === 'open' && Date.now() < deadline) await sleep(20);
      assert.equal(alpha.breaker.state, 'half-open');

      // The gateway hands the dispatcher a request whose client has already gone (or whose time is up).
      const gone = { requestId: 'probe-client-gone', signal: AbortSignal.abort(), deadline: Date.now() + 1000 };
      await assert.rejects(gw.services.dispatcher.chat(['alpha', 'beta'], { messages: [{ role: 'user', content: 'never sent' }] }, gone), /client closed/);
      const late = { requestId: 'probe-no-time', signal: new AbortController().signal, deadline: Date.now() - 1 };
      await assert.rejects(gw.services.dispatcher.chat(['alpha'], { messages: [{ role: 'user', content: 'never sent' }] }, late));

      const next = await timedPost(`${gw.url}/api/chat`, { message: 'is alpha probed?' }, 4000);
      assert.equal(next.json._actual_model_used, 'alpha', `alpha was skipped: ${JSON.stringify(next.json._routing?.attempts)}`);
      assert.equal(alpha.breaker.state, 'closed');
    },
  );
});
