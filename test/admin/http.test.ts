// HTTP-level tests of the admin page over real loopback HTTP: login, CSRF, weights, ratings,
// escaping of stored content, secrets never shown, security headers. (No-token mode is tested in
// unprotected.test.ts: services close a process-wide upstream pool, so one set per test file.)
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CSP } from '../../server/admin/security.ts';
import type { RequestRecord } from '../../server/store/types.ts';
import { extractFeatures } from '../../router/features.ts';
import { ADMIN_TOKEN, AdminClient, FAKE_SECRET, startAdminEnv, type AdminTestEnv } from './harness.ts';

const PAGES = ['/', '/models', '/console', '/decisions', '/rate', '/performance', '/performance?range=30d', '/learning', '/logs', '/api/overview', '/api/logs', '/api/learning/status'];

function storedRequest(id: string, over: Partial<RequestRecord> = {}): RequestRecord {
  const queryText = over.queryText ?? 'how do I sort a list?';
  return {
    id, ts: Date.now(), endpoint: '/api/chat', queryText, messageCount: 1, requestedModel: null, stream: false,
    features: extractFeatures(queryText, 1), finalModel: 'demo-fast', status: 'ok', httpStatus: 200, latencyMs: 12,
    answer: 'an answer', inputTokens: 5, outputTokens: 7, costUsd: 0.0001, error: null, demo: true, ...over,
  };
}

describe('admin page with ADMIN_TOKEN', () => {
  let env: AdminTestEnv;
  let client: AdminClient;

  before(async () => {
    env = await startAdminEnv();
    client = new AdminClient(env.url);
    const r = await client.login();
    assert.equal(r.status, 303);
  });
  after(async () => env.close());

  test('every page needs a login: pages redirect to the login form, JSON answers 401', async () => {
    const anon = new AdminClient(env.url);
    for (const p of ['/', '/models', '/decisions', '/learning']) {
      const r = await anon.get(p);
      assert.equal(r.status, 303, p);
      assert.equal(r.headers.get('location'), `/login?next=${encodeURIComponent(p)}`);
    }
    assert.equal((await anon.get('/api/overview')).status, 401);
    const login = await anon.get('/login');
    assert.equal(login.status, 200);
    assert.match(login.text, /name="token"/);
  });

  test('a wrong token is refused with 401, stays on the login form and grants nothing', async () => {
    const anon = new AdminClient(env.url);
    await anon.get('/login');
    const r = await anon.post('/login', { token: 'not-the-token', next: '/' });
    assert.equal(r.status, 401);
    assert.match(r.text, /Wrong admin token/);
    assert.match(r.text, /name="token"/);
    assert.equal((await anon.get('/')).status, 303);
  });

  test('the right token gives a fresh session id (no fixation) with a strict cookie', async () => {
    const anon = new AdminClient(env.url);
    const page = await anon.get('/login');
    const setCookie = page.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    assert.match(setCookie, /Path=\//);
    const before = anon.cookie;
    const r = await anon.post('/login', { token: ADMIN_TOKEN, next: '/models' });
    assert.equal(r.status, 303);
    assert.equal(r.headers.get('location'), '/models');
    assert.notEqual(anon.cookie, before);
    assert.equal((await anon.get('/models')).status, 200);
  });

  test('a login POST without the CSRF token is refused with 403', async () => {
    const anon = new AdminClient(env.url);
    await anon.get('/login');
    const r = await anon.post('/login', { token: ADMIN_TOKEN }, { csrf: false });
    assert.equal(r.status, 403);
    assert.equal((await anon.get('/')).status, 303);
  });

  test('a POST without a valid CSRF token is refused with 403 and changes nothing', async () => {
    const weightBefore = env.services.registry.get('demo-coder')!.weight;
    const none = await client.post('/models/weights', { 'weight:demo-coder': '9' }, { csrf: false });
    assert.equal(none.status, 403);
    const wrong = await client.post('/models/weights', { 'weight:demo-coder': '9' }, { csrf: 'x'.repeat(43) });
    assert.equal(wrong.status, 403);
    assert.equal(env.services.registry.get('demo-coder')!.weight, weightBefore);
    // Another session's token does not work for this one.
    const other = new AdminClient(env.url);
    await other.login();
    const crossed = await client.post('/models/weights', { 'weight:demo-coder': '9' }, { csrf: other.csrf });
    assert.equal(crossed.status, 403);
  });

  test('the weights form changes the live registry and persists like POST /api/config/weights', async () => {
    await client.get('/models');
    const r = await client.post('/models/weights', { 'weight:demo-coder': '7.5', 'enabled:demo-coder': '1', 'weight:demo-large': '0', 'enabled:demo-large': '0' });
    assert.equal(r.status, 303);
    assert.equal(r.headers.get('location'), '/models?saved=1');
    assert.equal(env.services.registry.get('demo-coder')!.weight, 7.5);
    assert.equal(env.services.registry.get('demo-large')!.enabled, false);
    const stored = await env.services.store.getWeights();
    assert.deepEqual(stored.filter((w) => w.model.startsWith('demo-')).map((w) => [w.model, w.weight, w.enabled]), [['demo-coder', 7.5, true], ['demo-large', 0, false]]);
    const page = await client.get('/models?saved=1');
    assert.match(page.text, /name="weight:demo-coder" value="7.5"/);
    // The enable/disable button is the same write.
    const t = await client.post('/models/toggle', { model: 'demo-large', enabled: '1' });
    assert.equal(t.status, 303);
    assert.equal(env.services.registry.get('demo-large')!.enabled, true);
  });

  test('invalid weights are refused with 400 and nothing is saved', async () => {
    await client.get('/models');
    const bads: Record<string, string>[] = [{ 'weight:demo-fast': '-1' }, { 'weight:demo-fast': 'abc' }, { 'weight:demo-fast': '1001' }, { 'weight:demo-fast': '' }, { 'weight:no-such-model': '1' }, { 'enabled:demo-fast': 'maybe' }];
    for (const bad of bads) {
      const before = env.services.registry.get('demo-fast')!.weight;
      const r = await client.post('/models/weights', { ...bad, 'weight:demo-coder': '3' });
      assert.equal(r.status, 400, JSON.stringify(bad));
      assert.match(r.text, /Nothing was saved/);
      assert.equal(env.services.registry.get('demo-fast')!.weight, before);
      assert.notEqual(env.services.registry.get('demo-coder')!.weight, 3);
    }
  });

  test('the test console answers through the gateway, stores the request and explains the routing', async () => {
    await client.get('/console');
    const r = await client.post('/console', { prompt: 'write a python function that reverses a list', model: 'auto', rules: '' });
    assert.equal(r.status, 200);
    const id = /href="\/decisions\/(adm_[0-9a-f-]{36})"/.exec(r.text)?.[1];
    assert.ok(id, 'the answer links its stored request');
    const model = /data-testid="answer-model">([^<]+)</.exec(r.text)?.[1];
    assert.ok(model && env.services.registry.has(model));
    assert.match(r.text, /data-testid="method">/);
    assert.match(r.text, /Candidates/);
    const stored = await env.services.store.getRequest(id!);
    assert.equal(stored?.endpoint, '/admin/test');
    assert.equal(stored?.finalModel, model);
    assert.ok(stored?.decision);
  });

  test('console routing rules send matching prompts to the named model; bad rules are a 400', async () => {
    await client.get('/console');
    const r = await client.post('/console', { prompt: 'hello there, polyglot please', model: 'auto', rules: 'polyglot -> demo-polyglot' });
    assert.equal(r.status, 200);
    assert.match(r.text, /data-testid="answer-model">demo-polyglot</);
    assert.match(r.text, /data-testid="method">request_rules</);
    const bad = await client.post('/console', { prompt: 'hi', model: 'auto', rules: '(a+)\\1$ -> demo-fast' });
    assert.equal(bad.status, 400);
    const noArrow = await client.post('/console', { prompt: 'hi', model: 'auto', rules: 'just a pattern' });
    assert.equal(noArrow.status, 400);
    assert.match(noArrow.text, /pattern -&gt; model/);
  });

  test('the model test button probes exactly that model and shows its answer and latency', async () => {
    await client.get('/models');
    const r = await client.post('/models/test', { model: 'demo-polyglot' });
    assert.equal(r.status, 200);
    assert.match(r.text, /Test of demo-polyglot: answered in/);
    assert.match(r.text, /Answered by <strong>demo-polyglot<\/strong>/);
    const disabled = await client.post('/models/test', { model: 'fake-remote' });
    assert.match(disabled.text, /Test of fake-remote: failed/);
  });

  test('the feedback form stores a user rating and the detail page shows it', async () => {
    env.services.store.recordRequest(storedRequest('req_feedback_1'), null, []);
    await client.get('/decisions/req_feedback_1');
    const r = await client.post('/feedback', { request_id: 'req_feedback_1', rating: '4', comment: 'solid', return_to: '/decisions/req_feedback_1' });
    assert.equal(r.status, 303);
    assert.equal(r.headers.get('location'), '/decisions/req_feedback_1?rated=1');
    const stored = await env.services.store.getRequest('req_feedback_1');
    assert.deepEqual(stored?.feedback.map((f) => [f.rating, f.comment, f.source]), [[4, 'solid', 'admin']]);
    const page = await client.get('/decisions/req_feedback_1?rated=1');
    assert.match(page.text, /rating saved/);
    assert.match(page.text, /data-rating="4"/);
    assert.equal((await client.post('/feedback', { request_id: 'req_feedback_1', rating: '6' })).status, 400);
    assert.equal((await client.post('/feedback', { request_id: 'req_missing_1', rating: '3' })).status, 404);
    const offsite = await client.post('/feedback', { request_id: 'req_feedback_1', rating: '5', return_to: '//evil.example/x' });
    assert.equal(offsite.headers.get('location'), '/decisions/req_feedback_1?rated=1');
  });

  test('stored queries and answers are escaped: a <script> answer renders as text everywhere', async () => {
    const payload = '<script>alert(1)</script>';
    env.services.store.recordRequest(storedRequest('req_xss_1', { queryText: '<img src=x onerror=alert(2)> "quoted"', answer: payload, ts: Date.now() + 60_000 }), null, []);
    await env.services.store.flush();
    for (const p of ['/decisions/req_xss_1', '/decisions', '/rate']) {
      const page = await client.get(p);
      assert.equal(page.status, 200, p);
      assert.ok(!page.text.includes(payload), `${p} contains the raw script`);
      assert.ok(!page.text.includes('<img src=x'), `${p} contains the raw img tag`);
      assert.ok(page.text.includes('&lt;img src=x onerror=alert(2)&gt;'), `${p} shows the query as text`);
      if (p !== '/decisions') assert.ok(page.text.includes('&lt;script&gt;alert(1)&lt;/script&gt;'), `${p} shows the answer as text`);
    }
  });

  test('no configured secret appears on any page or JSON endpoint, even one that got into the log', async () => {
    env.services.logger.warn('upstream said something', { detail: `key ${FAKE_SECRET} rejected` });
    const id = 'req_secret_1';
    env.services.store.recordRequest(storedRequest(id, { error: `bad key ${FAKE_SECRET}` }), null, []);
    await env.services.store.flush();
    const pages = [...PAGES, `/decisions/${id}`, '/logs?level=warn'];
    for (const p of pages) {
      const r = await client.get(p);
      assert.equal(r.status, 200, p);
      assert.ok(!r.text.includes(FAKE_SECRET), `${p} shows the API key`);
      assert.ok(!r.text.includes(ADMIN_TOKEN), `${p} shows the admin token`);
    }
    const logs = await client.get('/logs?level=warn');
    assert.match(logs.text, /\[REDACTED\]/);
    const posted = [
      await client.post('/console', { prompt: 'hello', model: 'auto', rules: '' }),
      await client.post('/models/test', { model: 'fake-remote' }),
    ];
    for (const r of posted) assert.ok(!r.text.includes(FAKE_SECRET));
  });

  test('pages carry the security headers and the demo-mode banner', async () => {
    const r = await client.get('/');
    assert.equal(r.headers.get('content-security-policy'), CSP);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(r.headers.get('referrer-policy'), 'no-referrer');
    assert.match(r.text, /DEMO MODE/);
    assert.doesNotMatch(r.text, /<script>|style="/, 'no inline script or style (the CSP forbids them)');
    const css = await client.get('/static/admin.css');
    assert.equal(css.status, 200);
    assert.equal(css.headers.get('content-security-policy'), CSP);
  });

  test('decisions are newest first, filterable and paginated with an "older" link', async () => {
    const base = Date.now() - 3600_000;
    for (let i = 0; i < 55; i++) {
      env.services.store.recordRequest(storedRequest(`req_page_${String(i).padStart(2, '0')}`, { ts: base + i, finalModel: i % 5 === 0 ? 'demo-large' : 'demo-fast', queryText: `paging query ${i}` }), null, []);
    }
    await env.services.store.flush();
    const first = await client.get('/decisions?model=demo-fast');
    const ids = [...first.text.matchAll(/paging query (\d+)/g)].map((m) => Number(m[1]));
    assert.equal(ids.length, 44);
    assert.deepEqual(ids, [...ids].sort((a, b) => b - a));
    const large = await client.get('/decisions?model=demo-large');
    assert.deepEqual([...large.text.matchAll(/paging query (\d+)/g)].map((m) => Number(m[1])), [50, 45, 40, 35, 30, 25, 20, 15, 10, 5, 0]);
    const all = await client.get('/decisions');
    const older = /href="(\/decisions\?before=[^"]+)">Older/.exec(all.text)?.[1];
    assert.ok(older, 'an older page exists');
    const second = await client.get(older!.replace(/&amp;/g, '&'));
    assert.equal(second.status, 200);
    assert.match(second.text, /Newest/);
  });

  test('the rating queue shows unrated answers one by one and moves on after a rating', async () => {
    const t = Date.now() + 120_000;
    env.services.store.recordRequest(storedRequest('req_queue_a', { ts: t + 2, answer: 'queue answer A' }), null, []);
    env.services.store.recordRequest(storedRequest('req_queue_b', { ts: t + 1, answer: 'queue answer B' }), null, []);
    await env.services.store.flush();
    const first = await client.get('/rate');
    assert.match(first.text, /queue answer A/);
    const next = /name="return_to" value="([^"]+)"/.exec(first.text)?.[1]?.replace(/&amp;/g, '&');
    const r = await client.post('/feedback', { request_id: 'req_queue_a', rating: '2', return_to: next! });
    assert.equal(r.status, 303);
    const after = await client.get(r.headers.get('location')!);
    assert.match(after.text, /queue answer B/);
    assert.match(after.text, /Rating saved/);
    // From the top again, A is rated now and no longer queued.
    assert.doesNotMatch((await client.get('/rate')).text, /queue answer A/);
  });

  test('"run learner now" runs in the background and its run is listed with replay metrics', async () => {
    await client.get('/learning');
    const r = await client.post('/learning/run', {});
    assert.equal(r.status, 303);
    assert.equal(r.headers.get('location'), '/learning');
    await env.ctx.runner.idle();
    const status = env.ctx.runner.status();
    assert.equal(status.outcome, 'ok', status.error ?? '');
    const runs = await env.services.store.learnerRuns!(5);
    assert.ok(runs.length >= 1);
    // Requests answered just before the click are learned from at once (nothing is in flight).
    assert.ok(runs[0]!.rowsRead > 0, `the run read ${runs[0]!.rowsRead} rows`);
    const page = await client.get('/learning');
    assert.match(page.text, new RegExp(`data-run-id="${runs[0]!.id}"`));
  });

  test('logs are filterable by level and request id', async () => {
    env.services.logger.info('plain info line', { requestId: 'req_log_filter_1' });
    env.services.logger.error('an error line <b>bold</b>', { requestId: 'req_log_filter_2' });
    const errors = await client.get('/logs?level=error');
    assert.match(errors.text, /an error line &lt;b&gt;bold&lt;\/b&gt;/);
    assert.doesNotMatch(errors.text, /plain info line/);
    const one = await client.get('/logs?request_id=req_log_filter_1');
    assert.match(one.text, /plain info line/);
    assert.doesNotMatch(one.text, /an error line/);
  });
});
