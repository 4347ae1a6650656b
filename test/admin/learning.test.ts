// The admin Learning page's evaluation and shadow sections over real loopback HTTP: "evaluate
// now" estimates the current and previous learned state from stored decisions, the premium over
// the blind mix and the explored share show, and shadow verdicts are listed (escaped).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { AdminClient, startAdminEnv, type AdminTestEnv } from './harness.ts';
import { recordLoggedTraffic } from '../learner/logged-traffic.ts';

describe('admin Learning page: off-policy evaluation and shadow comparisons', () => {
  let env: AdminTestEnv;
  let client: AdminClient;

  before(async () => {
    env = await startAdminEnv();
    client = new AdminClient(env.url);
    assert.equal((await client.login()).status, 303);
  });
  after(async () => env.close());

  test('before any evaluation the page says so, and shadow comparisons are off by default', async () => {
    const page = await client.get('/learning');
    assert.equal(page.status, 200);
    assert.match(page.text, /id="no-evaluation"/);
    assert.match(page.text, /Off: <code>SHADOW_SAMPLE<\/code> is 0/);
    assert.match(page.text, /id="no-shadow"/);
  });

  test('"evaluate now" shows the current and previous learned state, the premium over the blind mix and the explored share', async () => {
    const store = env.services.store;
    const t0 = Date.now() - 3_600_000;
    recordLoggedTraffic(store, 1500, t0, 3);
    await store.flush();
    await client.get('/learning');
    assert.equal((await client.post('/learning/run', {})).status, 303);
    await env.ctx.runner.idle();
    assert.equal(env.ctx.runner.status().outcome, 'ok', env.ctx.runner.status().error ?? '');
    recordLoggedTraffic(store, 1500, t0 + 10_000, 4);
    await store.flush();
    await client.get('/learning');
    await client.post('/learning/run', {});
    await env.ctx.runner.idle();
    const learnRuns = await store.learnerRuns!(5, 'learn');
    const version = (learnRuns[0]!.changes as { version: number }).version;
    assert.ok(version >= 2, `version ${version}`);

    await client.get('/learning');
    const r = await client.post('/learning/evaluate', {});
    assert.equal(r.status, 303);
    assert.equal(r.headers.get('location'), '/learning#evaluation');
    const [evaluation] = await store.learnerRuns!(1, 'evaluate');
    assert.equal(evaluation!.status, 'ok', evaluation!.error ?? '');

    const page = (await client.get('/learning')).text;
    assert.match(page, new RegExp(`Evaluation #${evaluation!.id} at`));
    assert.match(page, /3000 routed decisions/);
    // Every logged decision had propensity 0.3 or 0.7 for its choice: all of it explored.
    assert.match(page, /id="explored"><span class="label">Traffic explored<\/span>\s*<span class="value">100\.0%<\/span>/);
    assert.match(page, /id="premium"><span class="label">Premium over the blind mix<\/span>\s*<span class="value">\+0\.\d+<\/span>/);
    assert.match(page, new RegExp(`<tr data-state="current"><td>current \\(learned v${version}\\)</td>`));
    assert.match(page, new RegExp(`<tr data-state="previous"><td>previous \\(learned v${version - 1} \\(previous\\)\\)</td>`));
    assert.match(page, /data-policy="always coder"/);
    // The evaluation is not a learner run: it is neither in the runs table nor on the status API.
    assert.doesNotMatch(page, new RegExp(`data-run-id="${evaluation!.id}"`));
    const status = JSON.parse((await client.get('/api/learning/status')).text) as { latestRun: { id: number } };
    assert.equal(status.latestRun.id, learnRuns[0]!.id);
  });

  test('shadow comparisons are listed with their verdicts and both orders, stored text escaped', async () => {
    const store = env.services.store;
    const query = 'tides <script>alert(1)</script>';
    store.recordRequest({
      id: 'req_shadow_page', ts: Date.now(), endpoint: '/api/chat', queryText: query, messageCount: 1, requestedModel: null, stream: false,
      features: { language: 'en', mixed: false, domain: 'science', complexity: 'simple', lengthBucket: 's', chars: 30, hasCode: false, depth: 1 },
      finalModel: 'demo-fast', status: 'ok', httpStatus: 200, latencyMs: 5, answer: 'a', inputTokens: 1, outputTokens: 1, costUsd: 0, error: null, demo: true,
    }, null, []);
    await store.flush();
    await store.recordShadowComparison!({ ts: Date.now(), requestId: 'req_shadow_page', requestModel: 'demo-fast', shadowModel: 'demo-large', shadowRequestId: 'shadow_req_shadow_page', verdict: 'shadow', firstOrder: 'shadow', secondOrder: 'shadow', judgeModel: 'llama3', costUsd: 0.0003, reasoning: 'B is right', error: null });
    await store.recordShadowComparison!({ ts: Date.now() + 1, requestId: 'req_other', requestModel: 'demo-fast', shadowModel: 'demo-coder', shadowRequestId: null, verdict: null, firstOrder: null, secondOrder: null, judgeModel: 'llama3', costUsd: 0, reasoning: null, error: 'judge: ECONNREFUSED' });
    const page = (await client.get('/learning')).text;
    assert.match(page, /Latest 2: stored answer better 0, shadow answer better 1, tie 0, no verdict 1\./);
    assert.match(page, /tides &lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assert.doesNotMatch(page, /<script>alert/);
    assert.match(page, /shadow better/);
    assert.match(page, /judge: ECONNREFUSED/);
  });
});
