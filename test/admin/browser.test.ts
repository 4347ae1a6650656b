// End-to-end tests of the admin page in headless Chromium (playwright-core, Debian's chromium):
// log in, use the test console, rate, change weights, run the learner, and check XSS stays inert.
// Saves a screenshot of each page under test-artifacts/screenshots/.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { extractFeatures } from '../../router/features.ts';
import { ADMIN_TOKEN, startAdminEnv, type AdminTestEnv } from './harness.ts';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = fileURLToPath(new URL('../../test-artifacts/screenshots/', import.meta.url));
const skip = existsSync(CHROMIUM) ? false : `headless browser tests skipped: ${CHROMIUM} is missing (apt-get install chromium; CI installs it)`;
if (skip) console.log(`# ${skip}`);

describe('admin page in a browser', { skip }, () => {
  let env: AdminTestEnv;
  let browser: Browser;
  let page: Page;
  const cspViolations: string[] = [];
  const dialogs: string[] = [];

  const shot = async (name: string) => {
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  };

  /** Send a prompt from the test console and return the model that answered. */
  const ask = async (prompt: string): Promise<string> => {
    await page.goto(`${env.url}/console`);
    await page.fill('textarea[name="prompt"]', prompt);
    await Promise.all([page.waitForURL(`${env.url}/console`), page.click('.console-form button[type="submit"]')]);
    await page.waitForSelector('#console-result');
    return (await page.textContent('[data-testid="answer-model"]'))!.trim();
  };

  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    env = await startAdminEnv();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('console', (msg) => {
      if (/Content Security Policy/i.test(msg.text())) cspViolations.push(msg.text());
    });
    page.on('dialog', async (d) => {
      dialogs.push(d.message());
      await d.dismiss();
    });
  });

  after(async () => {
    await browser?.close();
    await env?.close();
  });

  test('logging in with the admin token opens the overview with the demo banner', async () => {
    await page.goto(`${env.url}/`);
    assert.match(page.url(), /\/login\?next=%2F$/);
    await shot('login');
    await page.fill('input[name="token"]', 'wrong-token');
    await page.click('form[action="/login"] button[type="submit"]');
    await page.waitForSelector('.error');
    assert.match((await page.textContent('.error'))!, /Wrong admin token/);
    await page.fill('input[name="token"]', ADMIN_TOKEN);
    await Promise.all([page.waitForURL(`${env.url}/`), page.click('form[action="/login"] button[type="submit"]')]);
    assert.equal(await page.textContent('h1'), 'Overview');
    assert.match((await page.textContent('.banner.demo'))!, /DEMO MODE/);
    await shot('overview');
  });

  test('the test console shows the answer, the model used and the routing explanation', async () => {
    const model = await ask('Write a python function that returns the squares of a list');
    assert.ok(env.services.registry.has(model), `answered by a configured model, got ${model}`);
    const answer = (await page.textContent('[data-testid="answer"]'))!;
    assert.ok(answer.length > 10);
    assert.ok(await page.isVisible('text=Why this model'));
    assert.ok(await page.isVisible('#console-result >> text=Candidates'));
    assert.ok((await page.textContent('[data-testid="method"]'))!.trim().length > 0);
    await shot('console');
  });

  test('rating the console answer stores a user rating and shows it on the request page', async () => {
    const href = (await page.getAttribute('#console-result a[href^="/decisions/adm_"]', 'href'))!;
    const id = decodeURIComponent(href.split('/').pop()!);
    await Promise.all([page.waitForURL(/\/decisions\/adm_.*rated=1/), page.click('#console-result button[data-rating="4"]')]);
    assert.ok(await page.isVisible('text=rating saved'));
    assert.equal(await page.getAttribute('[data-testid="feedback"] td[data-rating]', 'data-rating'), '4');
    const stored = await env.services.store.getRequest(id);
    assert.deepEqual(stored?.feedback.map((f) => [f.rating, f.source]), [[4, 'admin']]);
    await shot('decision');
  });

  test('setting every weight but one to 0 makes the router fall back to that model', async () => {
    await page.goto(`${env.url}/models`);
    for (const m of env.services.registry.ids()) {
      await page.fill(`input[name="weight:${m}"]`, m === 'demo-polyglot' ? '5' : '0');
    }
    await Promise.all([page.waitForURL(`${env.url}/models?saved=1`), page.click('button[form="weights-form"]')]);
    assert.ok(await page.isVisible('text=Saved.'));
    assert.equal(env.services.registry.get('demo-polyglot')!.weight, 5);
    assert.equal(env.services.registry.get('demo-fast')!.weight, 0);
    assert.equal((await env.services.store.getWeights()).find((w) => w.model === 'demo-fast')?.weight, 0);
    await shot('models');
    const model = await ask('Tell me something nice about autumn evenings');
    assert.equal(model, 'demo-polyglot');
    assert.equal((await page.textContent('[data-testid="method"]'))!.trim(), 'weights');
  });

  test('the model test button shows the probe answer and its latency', async () => {
    await page.goto(`${env.url}/models`);
    await Promise.all([page.waitForURL(`${env.url}/models/test`), page.click('tr[data-model="demo-coder"] form[action="/models/test"] button')]);
    const text = (await page.textContent('#probe-result'))!;
    assert.match(text, /Test of demo-coder: answered in \d+ ms/);
  });

  test('"run learner now" runs in the background and the new run appears when it finishes', async () => {
    await page.goto(`${env.url}/learning`);
    const before = await page.locator('[data-run-id]').count();
    await page.click('#run-learner');
    // The page polls the run's status and reloads itself once the run is over.
    await page.waitForFunction((n) => document.querySelectorAll('#runs-table tr[data-run-id]').length >= n && !document.querySelector('#learner-progress'), before + 1, { timeout: 20_000 });
    const runs = await env.services.store.learnerRuns!(10);
    assert.equal(runs.length, before + 1);
    assert.equal(runs[0]!.status, 'ok');
    assert.ok(await page.isVisible(`[data-run-id="${runs[0]!.id}"]`));
    await shot('learning');
  });

  test('a stored XSS payload renders as inert, visible text', async () => {
    const payload = '<script>alert(1)</script><img src=x onerror="alert(2)">';
    const queryText = 'show me <b onmouseover=alert(3)>this</b>';
    env.services.store.recordRequest({
      id: 'req_browser_xss', ts: Date.now(), endpoint: '/api/chat', queryText, messageCount: 1, requestedModel: null, stream: false,
      features: extractFeatures(queryText, 1), finalModel: 'demo-fast', status: 'ok', httpStatus: 200, latencyMs: 9, answer: payload,
      inputTokens: 1, outputTokens: 1, costUsd: 0, error: null, demo: true,
    }, null, []);
    await env.services.store.flush();
    await page.goto(`${env.url}/decisions/req_browser_xss`);
    assert.equal(await page.textContent('[data-testid="answer"]'), payload);
    assert.equal(await page.textContent('[data-testid="query"]'), queryText);
    assert.equal(await page.locator('[data-testid="answer"] img, [data-testid="answer"] script, [data-testid="query"] b').count(), 0);
    await page.hover('[data-testid="query"]');
    await shot('xss');
    await page.goto(`${env.url}/decisions`);
    await page.goto(`${env.url}/rate`);
    assert.deepEqual(dialogs, []);
  });

  test('the rating queue takes keyboard ratings: 5 rates the shown answer', async () => {
    await page.goto(`${env.url}/rate`);
    const id = (await page.getAttribute('.rate-item', 'data-request-id'))!;
    await shot('rate');
    await Promise.all([page.waitForURL(/\/rate\?before=.*rated=1/), page.keyboard.press('5')]);
    const stored = await env.services.store.getRequest(id);
    assert.deepEqual(stored?.feedback.filter((f) => f.source === 'admin').map((f) => f.rating), [5]);
    const nextId = await page.getAttribute('.rate-item', 'data-request-id');
    assert.notEqual(nextId, id);
    if (nextId) {
      await Promise.all([page.waitForURL(/\/rate\?before=/), page.keyboard.press('n')]);
      assert.notEqual(await page.getAttribute('.rate-item', 'data-request-id').catch(() => null), nextId);
    }
  });

  test('the remaining pages render, without CSP violations', async () => {
    for (const [name, p] of [['decisions', '/decisions'], ['performance', '/performance'], ['logs', '/logs'], ['overview-after', '/']] as const) {
      const res = await page.goto(`${env.url}${p}`);
      assert.equal(res?.status(), 200, p);
      await shot(name);
    }
    assert.ok(await page.isVisible('#model-health'));
    assert.deepEqual(cspViolations, []);
  });
});
